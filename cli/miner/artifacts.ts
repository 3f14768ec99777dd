import { createHash } from "node:crypto";
import { JobFailure } from "./executors.ts";

/**
 * A job's artifacts as an executor sees them: the input's artifacts to download and the output slots to upload to,
 * through the presigned links the claim carried (core/artifacts/references.ts). The links end with the lease; one
 * refused as expired (403) is retried once with fresh links for the current lease (`POST
 * /v1/miners/{job_id}/artifacts`), which a stale claim does not get.
 */

export interface ClaimLinks {
  inputs: { path: string; artifact_id: string; url: string }[];
  outputs: { artifact_id: string; upload_url: string }[];
  expires_at: string;
}

/** What an output names for an uploaded artifact: the coordinator measures it, the receipt records it. */
export interface UploadedArtifact {
  artifact_id: string;
  sha256: string;
  bytes: number;
  content_type: string;
}

export interface JobArtifacts {
  /** The input's artifact references, by path (`input.source`, `input.scene`...). */
  readonly inputs: readonly string[];
  /** The bytes of the input artifact referenced at `path`. */
  download(path: string): Promise<Uint8Array>;
  /** Uploads one output to the next free slot; put what it answers in the output. */
  upload(bytes: Uint8Array, contentType: string): Promise<UploadedArtifact>;
}

export function jobArtifacts(
  claimed: ClaimLinks | undefined,
  refresh: () => Promise<ClaimLinks>,
  signal: AbortSignal,
): JobArtifacts {
  let links: ClaimLinks = claimed ?? { inputs: [], outputs: [], expires_at: new Date().toISOString() };
  let used = 0;
  /** Runs `send` with the current links, once more with fresh ones if storage says they expired. */
  const withLinks = async (send: (l: ClaimLinks) => Promise<Response>): Promise<Response> => {
    const first = await send(links);
    if (first.status !== 403) return first;
    await first.body?.cancel();
    links = await refresh();
    return send(links);
  };
  return {
    inputs: links.inputs.map((i) => i.path),
    async download(path) {
      if (!links.inputs.some((i) => i.path === path))
        throw new JobFailure("missing_input", `the job's input has no artifact at ${path}`, false);
      const res = await withLinks((l) => fetch(l.inputs.find((i) => i.path === path)?.url ?? "", { signal }));
      if (!res.ok)
        throw new JobFailure("input_download_failed", `downloading ${path}: HTTP ${res.status}`, true);
      return new Uint8Array(await res.arrayBuffer());
    },
    async upload(bytes, contentType) {
      const slot = used;
      if (slot >= links.outputs.length)
        throw new JobFailure(
          "no_output_slot",
          `the job allows ${links.outputs.length} output artifact(s)`,
          false,
        );
      used++;
      const res = await withLinks((l) =>
        fetch(l.outputs[slot]?.upload_url ?? "", {
          method: "PUT",
          headers: { "content-type": contentType },
          body: bytes,
          signal,
        }),
      );
      if (!res.ok)
        throw new JobFailure("output_upload_failed", `uploading an output: HTTP ${res.status}`, true);
      return {
        artifact_id: links.outputs[slot]?.artifact_id as string,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        bytes: bytes.length,
        content_type: contentType,
      };
    },
  };
}
