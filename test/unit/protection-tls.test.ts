// The cluster's TLS material (src/protection/tls.ts, x509.ts): certificates issued by the
// cluster CA are accepted by node:tls in both directions, and each way a node's own files can
// be wrong is a FIT_ERR_TLS_CERT that names the file and what to do, before any connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { certificateNames, issueCertificate, issueTlsFiles, loadTlsIdentity, makeCertificateAuthority, writeClusterTls, type TlsFiles } from '../../src/protection/index.js';
import { X509Certificate } from 'node:crypto';
import { fitErrorFrom } from '../helpers/errors.js';

const DAY_MS = 24 * 60 * 60 * 1000;

async function withDir(fn: (dir: string, files: TlsFiles) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-tls-'));
  try {
    await fn(dir, { ca: join(dir, 'ca.crt'), cert: join(dir, '{name}.crt'), key: join(dir, '{name}.key') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('init --tls material: a CA and one certificate per name, keys mode 0600, each naming its node', async () => {
  await withDir(async (dir, files) => {
    await writeClusterTls(files, ['replica-0', 'probe']);
    for (const f of ['ca.key', 'replica-0.key', 'probe.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    const id = loadTlsIdentity(files, 'probe');
    assert.deepEqual(certificateNames(new X509Certificate(id.cert)), ['probe']);
    assert.equal(loadTlsIdentity(files, 'replica-0').name, 'replica-0');
  });
});

test('node:tls accepts the certificates both ways: mutual TLS 1.3 with the cluster CA', async () => {
  await withDir(async (_dir, files) => {
    await writeClusterTls(files, ['replica-0', 'probe']);
    const server = loadTlsIdentity(files, 'replica-0');
    const client = loadTlsIdentity(files, 'probe');
    const srv = createServer({ ca: server.ca, cert: server.cert, key: server.key, requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
      s.end(certificateNames(s.getPeerX509Certificate()!).join(','));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const got = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: client.ca, cert: client.cert, key: client.key, servername: 'replica-0' });
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('end', () => resolve(`${s.getProtocol()} ${s.authorized} ${data}`));
      s.on('error', reject);
    });
    srv.close();
    assert.equal(got, 'TLSv1.3 true probe');
  });
});

test("a node's own TLS files are checked before any connection, each failure naming the file", async () => {
  await withDir(async (dir, files) => {
    await writeClusterTls(files, ['probe', 'console']);
    const missing = fitErrorFrom(() => loadTlsIdentity(files, 'siem'));
    assert.equal(missing.code, 'FIT_ERR_TLS_CERT');
    assert.equal(missing.fields.path, join(dir, 'siem.crt'));
    assert.match(missing.message, /cannot read .*ENOENT.*init --tls/);

    // Another CA's certificate, under the name the node expects.
    const other = await makeCertificateAuthority('another CA');
    const foreign = await issueCertificate(other, 'siem');
    writeFileSync(join(dir, 'siem.crt'), foreign.certPem);
    writeFileSync(join(dir, 'siem.key'), foreign.keyPem);
    assert.match(fitErrorFrom(() => loadTlsIdentity(files, 'siem')).message, /siem\.crt: was not issued by the cluster CA .*another CA/);

    // The key of another certificate.
    writeFileSync(join(dir, 'siem.key'), (await issueCertificate(other, 'x')).keyPem);
    assert.match(fitErrorFrom(() => loadTlsIdentity(files, 'siem')).message, /siem\.key: is not the private key of/);

    const now = Date.now();
    await issueTlsFiles(files, 'old', { notBeforeMs: now - 10 * DAY_MS, notAfterMs: now - DAY_MS });
    assert.match(fitErrorFrom(() => loadTlsIdentity(files, 'old')).message, /old\.crt: expired on .*issue a new certificate/);

    // The right CA, the wrong node.
    const wrongName = fitErrorFrom(() => loadTlsIdentity({ ...files, cert: join(dir, 'probe.crt'), key: join(dir, 'probe.key') }, 'console'));
    assert.match(wrongName.message, /probe\.crt: names "probe", not "console"/);

    writeFileSync(join(dir, 'junk.crt'), 'not a certificate');
    assert.match(fitErrorFrom(() => loadTlsIdentity({ ...files, ca: join(dir, 'junk.crt') }, 'probe')).message, /junk\.crt: holds no PEM certificate/);
  });
});

test('a CA file may hold several CAs (while one replaces another): a certificate from any of them loads', async () => {
  await withDir(async (dir, files) => {
    await writeClusterTls(files, ['probe']);
    const next = await makeCertificateAuthority('next CA');
    const pair = await issueCertificate(next, 'probe');
    const bundle = join(dir, 'bundle.crt');
    writeFileSync(bundle, `${readFileSync(files.ca, 'utf8')}${next.certPem}`);
    writeFileSync(join(dir, 'probe.crt'), pair.certPem);
    writeFileSync(join(dir, 'probe.key'), pair.keyPem);
    assert.equal(loadTlsIdentity({ ...files, ca: bundle }, 'probe').name, 'probe');
  });
});
