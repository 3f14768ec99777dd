import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { type Command, printFields, printJson, str, UsageError } from "../command.ts";

/** Content types by extension, for what GPU services take and make; anything else needs --content-type. */
const TYPES: Record<string, string> = {
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".mkv": "video/x-matroska",
  ".mov": "video/quicktime",
  ".mp3": "audio/mpeg",
  ".wav": "audio/wav",
  ".flac": "audio/flac",
  ".ogg": "audio/ogg",
  ".m4a": "audio/mp4",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".exr": "image/x-exr",
  ".blend": "application/x-blender",
  ".json": "application/json",
  ".txt": "text/plain",
};

const upload: Command = {
  name: "upload",
  summary: "Upload a file as an artifact (POST /v1/uploads and its presigned PUT); prints its artifact_id",
  args: ["<file>"],
  auth: true,
  options: {
    "content-type": { type: "string", value: "TYPE", description: "MIME type (default: from the extension)" },
    filename: { type: "string", value: "NAME", description: "Name it downloads as (default: the file's)" },
  },
  details:
    'Reference the artifact in a job\'s input as {"artifact_id": "art_..."} (docs/artifacts.md). The SHA-256 is declared, so a corrupted upload is refused.',
  examples: [
    "coord upload clip.mov",
    `coord jobs submit ffmpeg.transcode --input "{\\"source\\":{\\"artifact_id\\":\\"$(coord upload clip.mov --json | jq -r .artifact_id)\\"},\\"container\\":\\"webm\\"}"`,
  ],
  async run(ctx) {
    const [file = ""] = ctx.args;
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      throw new UsageError(`cannot read ${file}`);
    }
    const contentType = str(ctx.opts, "content-type") ?? TYPES[extname(file).toLowerCase()];
    if (!contentType) throw new UsageError(`unknown type of ${file}: give --content-type`);
    const bytes = readFileSync(file);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    ctx.io.stderr(`uploading ${file} (${size} bytes, ${contentType})...\n`);
    const up = await ctx.api.post<{
      artifact_id: string;
      upload_url: string;
      upload_headers: Record<string, string>;
    }>("/v1/uploads", {
      content_type: contentType,
      size,
      sha256,
      filename: str(ctx.opts, "filename") ?? basename(file),
    });
    const put = await fetch(up.body.upload_url, {
      method: "PUT",
      headers: up.body.upload_headers,
      body: bytes,
    });
    if (!put.ok)
      throw new Error(`storage refused the upload: HTTP ${put.status} ${(await put.text()).slice(0, 300)}`);
    const out = { artifact_id: up.body.artifact_id, bytes: size, sha256, content_type: contentType };
    if (ctx.json) printJson(ctx.io, out);
    else ctx.io.stdout(`${out.artifact_id}\n`);
  },
};

const download: Command = {
  name: "download",
  summary: "Download an artifact of yours (an upload, or a job's output) to a file",
  args: ["<artifact_id>"],
  auth: true,
  options: {
    output: {
      type: "string",
      short: "o",
      value: "FILE",
      description: "Where to write (default: its filename)",
    },
  },
  examples: ["coord download art_01hx... -o out.webm"],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const meta = await ctx.api.get<{
      status: string;
      filename: string | null;
      download_url?: string;
      sha256: string | null;
    }>(`/v1/artifacts/${encodeURIComponent(id)}`);
    if (!meta.body.download_url)
      throw new Error(`artifact ${id} is ${meta.body.status}: nothing to download`);
    const res = await fetch(meta.body.download_url);
    if (!res.ok) throw new Error(`storage answered HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const got = createHash("sha256").update(bytes).digest("hex");
    if (meta.body.sha256 && got !== meta.body.sha256)
      throw new Error(`the download's SHA-256 is ${got}, not the artifact's ${meta.body.sha256}`);
    const target = str(ctx.opts, "output") ?? meta.body.filename ?? id;
    writeFileSync(target, bytes);
    const out = { artifact_id: id, file: target, bytes: bytes.length, sha256: got };
    if (ctx.json) printJson(ctx.io, out);
    else printFields(ctx.io, out);
  },
};

export const artifactCommands: Command[] = [upload, download];
