/**
 * The reference miner's Ed25519 identity: it registers the public key (proving it holds the private one by signing a
 * single-use challenge) and co-signs every result, so a receipt carries the miner's own word for the output beside
 * the coordinator's. The key file holds the raw 32-byte seed, base64url (what `coord miner keygen` writes), or a
 * PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes).
 */
import { createPublicKey, type KeyObject, sign } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { base64url, canonicalBytes } from "../../core/receipts/canonical.ts";
import { newPrivateSeed, privateKeyFrom, rawPublicKey } from "../../core/receipts/ed25519.ts";
import { jsonSha256, sha256Hex } from "../../core/receipts/receipt.ts";
import { keyProofStatement, resultStatement } from "../../core/receipts/statements.ts";

export class MinerSigner {
  /** The raw public key, base64url: what the registration names. */
  readonly publicKey: string;

  constructor(private readonly key: KeyObject) {
    this.publicKey = rawPublicKey(createPublicKey(key));
  }

  /** Reads a key file; throws naming the file when it holds no Ed25519 private key. */
  static fromFile(path: string): MinerSigner {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`cannot read the signing key ${path}: ${(err as Error).message}`);
    }
    try {
      return new MinerSigner(privateKeyFrom(text.trim()));
    } catch (err) {
      throw new Error(`${path} is not an Ed25519 private key (${(err as Error).message})`);
    }
  }

  /** The registration's `key_proof` for a challenge from `POST /v1/miners/challenge`. */
  keyProof(
    challenge: string,
    accountId: string,
    minerName: string,
  ): { challenge: string; signature: string } {
    const statement = keyProofStatement({
      challenge,
      account_id: accountId,
      miner_name: minerName,
      public_key: this.publicKey,
    });
    return { challenge, signature: this.sign(canonicalBytes(statement)) };
  }

  /** The co-signature of a result: this output (its canonical JSON's SHA-256), for this attempt, under this claim. */
  signResult(jobId: string, attempt: number, claimToken: string, output: unknown): string {
    const statement = resultStatement({
      job_id: jobId,
      attempt,
      claim_token_sha256: sha256Hex(claimToken),
      output_sha256: jsonSha256(output),
    });
    return this.sign(canonicalBytes(statement));
  }

  private sign(bytes: Uint8Array): string {
    return base64url.encode(new Uint8Array(sign(null, bytes, this.key)));
  }
}

/** Writes a new key file (mode 0600), refusing to overwrite one: a miner's key is its identity. */
export function writeNewKeyFile(path: string): MinerSigner {
  if (existsSync(path)) throw new Error(`${path} exists; not overwriting a signing key`);
  const seed = newPrivateSeed();
  writeFileSync(path, `${seed}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return new MinerSigner(privateKeyFrom(seed));
}
