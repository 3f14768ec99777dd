import { list, type OptionValues } from "../../command.ts";

/**
 * A forwarding runner's repeatable `--<flag> ID=NAME`: the server's own name for each registry model id (vLLM's
 * served name, a whisper server's model, an A1111 checkpoint). Every such runner reads it the same way, so one
 * place parses it: the map, or the usage error for a pair without an id (`shape` is how the runner's help spells it).
 */
export function modelNames(
  opts: OptionValues,
  flag: string,
  shape = "ID=NAME",
): Record<string, string> | string {
  const models: Record<string, string> = {};
  for (const pair of list(opts, flag)) {
    const at = pair.indexOf("=");
    if (at < 1) return `--${flag} takes ${shape}, got ${JSON.stringify(pair)}`;
    models[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return models;
}
