import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { certificateSerial, ensureLocalServingMaterial } from '../../../src/http/local-ca.ts'
import { repoRoot } from '../../harness/binaries.ts'
import { tempDir } from '../../harness/temp-dir.ts'

test('first start creates a CA and a serving certificate it signed; later starts keep them', () => {
  const dir = tempDir('gh-ca-')
  const first = ensureLocalServingMaterial(dir)
  assert.equal(first.createdCa, true)
  const ca = new X509Certificate(first.caCertPem)
  const leaf = new X509Certificate(first.certPem)
  assert.equal(ca.ca, true)
  assert.equal(leaf.ca, false)
  assert.ok(leaf.verify(ca.publicKey), 'serving certificate is signed by the local CA')
  assert.ok(leaf.checkHost('localhost'))
  assert.ok(leaf.checkIP('127.0.0.1'))
  assert.equal(statSync(join(dir, 'pki', 'ca.key')).mode & 0o777, 0o600)

  const second = ensureLocalServingMaterial(dir)
  assert.equal(second.createdCa, false)
  assert.equal(second.caCertPem, first.caCertPem)
  assert.equal(second.certPem, first.certPem)
})

test('a new hostname reissues the serving certificate under the same CA', () => {
  const dir = tempDir('gh-ca-')
  const first = ensureLocalServingMaterial(dir)
  const next = ensureLocalServingMaterial(dir, ['gatehouse.internal'])
  assert.equal(next.caCertPem, first.caCertPem)
  assert.notEqual(next.certPem, first.certPem)
  const leaf = new X509Certificate(readFileSync(join(dir, 'pki', 'serving.crt')))
  assert.ok(leaf.checkHost('gatehouse.internal'))
  assert.ok(leaf.verify(new X509Certificate(first.caCertPem).publicKey))
})

test('serials are minimal DER integers: never a leading zero byte (OpenSSL 3 refuses those)', () => {
  for (let i = 0; i < 100_000; i++) {
    const first = parseInt(certificateSerial().slice(0, 2), 16)
    assert.ok(first >= 0x01 && first <= 0x7f, `first serial byte ${first}`)
  }
})

test('a serving certificate OpenSSL cannot read (an earlier non-minimal serial) is reissued at start', () => {
  const dir = tempDir('gh-ca-')
  const first = ensureLocalServingMaterial(dir)
  // the certificate an earlier version wrote one time in 256: "asn1 encoding routines::illegal padding"
  const broken = readFileSync(join(repoRoot, 'test', 'fixtures', 'pki', 'non-minimal-serial.crt'))
  assert.throws(() => new X509Certificate(broken), /illegal padding/)
  writeFileSync(join(dir, 'pki', 'serving.crt'), broken)
  const second = ensureLocalServingMaterial(dir)
  assert.equal(second.createdCa, false)
  assert.equal(second.caCertPem, first.caCertPem)
  const leaf = new X509Certificate(second.certPem)
  assert.ok(leaf.verify(new X509Certificate(first.caCertPem).publicKey))
})
