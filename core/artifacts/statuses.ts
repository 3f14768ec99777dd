/**
 * An artifact's states:
 * - `awaiting_upload`: created by `POST /v1/uploads`, its presigned PUT handed out, nothing checked yet;
 * - `ready`: its object arrived and was measured (size, SHA-256): jobs may reference it, links may be handed out;
 * - `refused`: its object did not match what was declared (size, SHA-256, content type); never readable.
 * A job's outputs are written `ready` by the completion that measured them.
 */
export const ARTIFACT_STATUSES = ["awaiting_upload", "ready", "refused"] as const;
export type ArtifactStatus = (typeof ARTIFACT_STATUSES)[number];

/** Every move an artifact can make (as the jobs' TRANSITIONS): each one conditional write on the version. */
export const ARTIFACT_TRANSITIONS = {
  /** The upload arrived and is what was declared. */
  arrive: { from: ["awaiting_upload"], to: "ready" },
  /** The upload arrived and is not what was declared: its object is deleted. */
  refuse: { from: ["awaiting_upload"], to: "refused" },
} as const satisfies Record<string, { from: readonly ArtifactStatus[]; to: ArtifactStatus }>;

export type ArtifactTransition = keyof typeof ARTIFACT_TRANSITIONS;

export function canMoveArtifact(t: ArtifactTransition, from: ArtifactStatus): boolean {
  return (ARTIFACT_TRANSITIONS[t].from as readonly ArtifactStatus[]).includes(from);
}
