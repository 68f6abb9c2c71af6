// Without a configured certificate Gatehouse serves TLS from its own local CA, created on first
// start in the data directory and kept, so generated kubeconfigs can pin it (never
// insecure-skip-tls-verify).
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import forge from 'node-forge'

export interface ServingMaterial {
  caCertPem: string
  certPem: string
  keyPem: string
  /** True when this call created the CA (first start). */
  createdCa: boolean
}

const CA_YEARS = 10
const SERVING_DAYS = 397

function newKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

/**
 * A positive 16-byte serial (RFC 5280 §4.1.2.2: at most 20 octets, non-negative) whose first
 * byte is 0x01–0x7f: node-forge encodes the hex as given, and a leading 0x00 byte followed by a
 * byte below 0x80 is a non-minimal DER INTEGER that OpenSSL 3 rejects ("illegal padding"), one
 * certificate in 256 before this was fixed.
 */
export function certificateSerial(): string {
  const b = randomBytes(16)
  b[0] = b[0]! & 0x7f || 0x01
  return b.toString('hex')
}

/** Whether OpenSSL (Node's crypto) can read a certificate; forge alone is more lenient. */
function readable(certPem: string): boolean {
  try {
    new X509Certificate(certPem)
    return true
  } catch {
    return false
  }
}

function createCa(): { certPem: string; keyPem: string } {
  const keys = newKeyPair()
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem)
  cert.serialNumber = certificateSerial()
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + CA_YEARS * 365 * 86_400_000)
  const subject = [
    { name: 'commonName', value: `Gatehouse local CA ${certificateSerial().slice(0, 8)}` },
  ]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem }
}

function issueServing(
  ca: { certPem: string; keyPem: string },
  hostnames: string[],
): { certPem: string; keyPem: string } {
  const keys = newKeyPair()
  const caCert = forge.pki.certificateFromPem(ca.certPem)
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem)
  cert.serialNumber = certificateSerial()
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + SERVING_DAYS * 86_400_000)
  cert.setSubject([{ name: 'commonName', value: 'gatehouse' }])
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hostnames.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    },
  ])
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem }
}

function coversAll(certPem: string, hostnames: string[]): boolean {
  const cert = forge.pki.certificateFromPem(certPem)
  if (cert.validity.notAfter.getTime() < Date.now() + 30 * 86_400_000) return false
  const san = cert.getExtension('subjectAltName') as {
    altNames?: { value?: string; ip?: string }[]
  } | null
  const names = new Set((san?.altNames ?? []).map((a) => a.ip ?? a.value))
  return hostnames.every((h) => names.has(h))
}

/** Loads or creates `<dataDir>/pki/{ca,serving}.{crt,key}`; reissues the serving cert when names change or it nears expiry. */
export function ensureLocalServingMaterial(
  dataDir: string,
  extraHostnames: string[] = [],
): ServingMaterial {
  const dir = join(dataDir, 'pki')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const files = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'serving.crt'),
    key: join(dir, 'serving.key'),
  }
  const hostnames = [...new Set(['localhost', '127.0.0.1', '::1', ...extraHostnames])]
  let createdCa = false
  // A CA that OpenSSL cannot read (an earlier version's non-minimal serial) never served a
  // client: replace it rather than fail to start for ever.
  if (
    !existsSync(files.caCert) ||
    !existsSync(files.caKey) ||
    !readable(readFileSync(files.caCert, 'utf8'))
  ) {
    const ca = createCa()
    writeFileSync(files.caKey, ca.keyPem, { mode: 0o600 })
    writeFileSync(files.caCert, ca.certPem)
    createdCa = true
  }
  const ca = {
    certPem: readFileSync(files.caCert, 'utf8'),
    keyPem: readFileSync(files.caKey, 'utf8'),
  }
  if (
    createdCa ||
    !existsSync(files.cert) ||
    !existsSync(files.key) ||
    !readable(readFileSync(files.cert, 'utf8')) ||
    !coversAll(readFileSync(files.cert, 'utf8'), hostnames)
  ) {
    const serving = issueServing(ca, hostnames)
    writeFileSync(files.key, serving.keyPem, { mode: 0o600 })
    writeFileSync(files.cert, serving.certPem)
  }
  return {
    caCertPem: ca.certPem,
    certPem: readFileSync(files.cert, 'utf8'),
    keyPem: readFileSync(files.key, 'utf8'),
    createdCa,
  }
}
