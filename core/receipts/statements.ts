/**
 * What each Ed25519 signature of the system is over: a canonical JSON object whose `type` names the statement, so
 * that a signature made for one purpose can never be replayed as another (domain separation), and whose fields are
 * exactly what the signer vouches for. Browser-safe: shared by the coordinator, the SDK and the reference miner.
 */

/** The coordinator's receipt body type (the receipt document's `receipt.type`). */
export const RECEIPT_TYPE = "coordinator.receipt.v1";

/** A miner's co-signature of its result: this output, for this attempt, under this claim. */
export interface ResultStatement {
  type: "coordinator.result.v1";
  job_id: string;
  attempt: number;
  claim_token_sha256: string;
  output_sha256: string;
}

export function resultStatement(fields: Omit<ResultStatement, "type">): ResultStatement {
  return { type: "coordinator.result.v1", ...fields };
}

/** A miner's proof, at registration, that it holds the private key of the public key it registers. */
export interface KeyProofStatement {
  type: "coordinator.miner_key_proof.v1";
  challenge: string;
  account_id: string;
  miner_name: string;
  public_key: string;
}

export function keyProofStatement(fields: Omit<KeyProofStatement, "type">): KeyProofStatement {
  return { type: "coordinator.miner_key_proof.v1", ...fields };
}
