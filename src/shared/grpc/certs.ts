/**
 * {@linkcode checkCertificates}: the checks a component makes on its gRPC certificates before it
 * serves or dials anything, each failure one clear line.
 *
 * Two of them guard against faults of Deno 2.9.3 rather than of the files: an X.509 v1
 * certificate in the trust list lets a client in without proving it holds the key, and a key
 * that does not match its certificate makes `Deno.connectTls` panic.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

/** PEM texts of one component's mTLS identity: the cluster CA(s), its certificate, its key. */
export interface CertificateSet {
  /** One or more CA certificates (PEM), the only issuers trusted. */
  readonly caPem: string;
  /** The component's certificate (PEM), issued by one of the CAs. */
  readonly certPem: string;
  /** The certificate's private key (PEM). */
  readonly keyPem: string;
}

/** Names of the files a set came from, for the error messages. */
export interface CertificateFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate block of a PEM text, in order. */
export function pemCertificates(pem: string): string[] {
  return pem.match(PEM_CERT) ?? [];
}

/**
 * Throws an Error with one clear line unless: the CA file holds at least one certificate and
 * each is an X.509 v3 CA certificate; the certificate is v3 and issued (and signed) by one of
 * them; the key is a private key matching the certificate.
 */
export function checkCertificates(set: CertificateSet, files: CertificateFiles): void {
  const cas = pemCertificates(set.caPem).map((pem) => parseCertificate(pem, files.caFile));
  if (cas.length === 0) throw new Error(`No certificate in ${files.caFile}`);
  for (const ca of cas) {
    if (!isX509v3(ca.raw)) {
      throw new Error(
        `${files.caFile}: ${ca.subject} is an X.509 v1 certificate: a CA must be X.509 v3`,
      );
    }
    if (!ca.ca) throw new Error(`${files.caFile}: ${ca.subject} is not a CA certificate`);
  }
  const certs = pemCertificates(set.certPem);
  if (certs.length === 0) throw new Error(`No certificate in ${files.certFile}`);
  const cert = parseCertificate(certs[0], files.certFile);
  if (!isX509v3(cert.raw)) {
    throw new Error(`${files.certFile} is an X.509 v1 certificate: it must be X.509 v3`);
  }
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
    throw new Error(`${files.certFile} is not issued by a CA of ${files.caFile}`);
  }
  let key;
  try {
    key = createPrivateKey(set.keyPem);
  } catch (e) {
    throw new Error(`${files.keyFile} holds no private key: ${(e as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new Error(`${files.keyFile} is not the private key of ${files.certFile}`);
  }
}

function parseCertificate(pem: string, file: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new Error(`${file} holds an unreadable certificate: ${(e as Error).message}`);
  }
}

/**
 * Whether a DER certificate is X.509 v3: its TBSCertificate opens with the explicit version
 * field `[0] INTEGER 2` (A0 03 02 01 02); a v1 certificate has no version field at all.
 */
export function isX509v3(der: Uint8Array): boolean {
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] EXPLICIT version, … }, … }
  const tbs = sequenceBody(der, 0);
  if (tbs < 0) return false;
  const version = sequenceBody(der, tbs);
  if (version < 0 || version + 5 > der.length) return false;
  return der[version] === 0xa0 && der[version + 1] === 0x03 && der[version + 2] === 0x02 &&
    der[version + 3] === 0x01 && der[version + 4] === 0x02;
}

/** Offset of the contents of the SEQUENCE whose tag is at `at`, or -1. */
function sequenceBody(der: Uint8Array, at: number): number {
  if (at + 2 > der.length || der[at] !== 0x30) return -1;
  const first = der[at + 1];
  if (first < 0x80) return at + 2;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || at + 2 + n > der.length) return -1;
  return at + 2 + n;
}
