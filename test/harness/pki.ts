// Test PKI for the harness: a CA, serving certificates and keys, made with the openssl CLI.
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface CertPair {
  certFile: string
  keyFile: string
}

export interface TestCa extends CertPair {
  dir: string
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

export function createCa(dir: string, name = 'gatehouse-test-ca'): TestCa {
  const keyFile = join(dir, `${name}.key`)
  const certFile = join(dir, `${name}.crt`)
  openssl(['genrsa', '-out', keyFile, '2048'], dir)
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/CN=${name}`,
      '-out',
      certFile,
    ],
    dir,
  )
  return { dir, keyFile, certFile }
}

/** A leaf certificate signed by `ca`, valid for loopback names, for serving or client auth. */
export function issueCert(
  ca: TestCa,
  name: string,
  opts: { cn?: string; org?: string; sans?: string[]; client?: boolean } = {},
): CertPair {
  const keyFile = join(ca.dir, `${name}.key`)
  const csr = join(ca.dir, `${name}.csr`)
  const certFile = join(ca.dir, `${name}.crt`)
  const ext = join(ca.dir, `${name}.ext`)
  const sans = opts.sans ?? ['DNS:localhost', 'IP:127.0.0.1']
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth,clientAuth'}`,
      `subjectAltName=${sans.join(',')}`,
      '',
    ].join('\n'),
  )
  const subj = `/CN=${opts.cn ?? name}${opts.org ? `/O=${opts.org}` : ''}`
  openssl(['genrsa', '-out', keyFile, '2048'], ca.dir)
  openssl(['req', '-new', '-key', keyFile, '-subj', subj, '-out', csr], ca.dir)
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-days',
      '825',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      certFile,
    ],
    ca.dir,
  )
  return { certFile, keyFile }
}

/** An RSA key pair in PEM files, e.g. for signing service-account tokens. */
export function createRsaKeyPair(
  dir: string,
  name: string,
): { publicFile: string; privateFile: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicFile = join(dir, `${name}.pub`)
  const privateFile = join(dir, `${name}.key`)
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }))
  writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  return { publicFile, privateFile }
}
