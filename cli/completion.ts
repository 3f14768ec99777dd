/**
 * Shell completion scripts for `coord`, generated from the command table (cli/main.ts COMMANDS) and the options
 * each command declares, so that they cannot drift from the commands: a new command or option is completed as
 * soon as it exists. `coord completion bash|zsh|fish` prints one; see docs/cli.md for where to put it.
 *
 * Every script does the same: it reads the words typed so far, skipping options and the values of the options that
 * take one, to find where in the command tree the cursor is; it offers the sub-commands there (`jobs` -> `submit`,
 * `get`...), or the options of the command named (and the global ones) once the word begins with `-`, or files
 * (for `--input-file FILE`, `<file>` arguments) and the choices an argument declares.
 */
import type { Command, OptionSpec } from "./command.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

interface Option {
  name: string;
  short?: string;
  takesValue: boolean;
  file: boolean;
  description: string;
}

interface Node {
  /** The command words up to here: `""` (the top), `jobs`, `admin accounts`, `jobs submit`. */
  path: string;
  /** The words that may follow, with what each leads to. */
  children: { word: string; summary: string }[];
  /** The command these words name, if any (`account` is a command and leads to `account ledger`). */
  command?: Command;
}

function options(specs: Record<string, OptionSpec> | undefined): Option[] {
  return Object.entries(specs ?? {}).map(([name, spec]) => ({
    name,
    short: spec.short,
    takesValue: spec.type === "string",
    file: spec.value === "FILE",
    description: spec.description,
  }));
}

/** The command tree: every prefix of every command's words, with the words that can follow it. */
function tree(commands: Command[]): Node[] {
  const nodes = new Map<string, Node>();
  const node = (path: string) => {
    const found = nodes.get(path);
    if (found) return found;
    const made: Node = { path, children: [] };
    nodes.set(path, made);
    return made;
  };
  node("");
  for (const cmd of commands) {
    const words = cmd.name.split(" ");
    for (let i = 0; i < words.length; i++) {
      const parent = node(words.slice(0, i).join(" "));
      const word = words[i] as string;
      if (!parent.children.some((c) => c.word === word)) {
        const isLeaf = i === words.length - 1;
        const group = words.slice(0, i + 1).join(" ");
        parent.children.push({ word, summary: isLeaf ? cmd.summary : `${group} commands` });
      }
      node(words.slice(0, i + 1).join(" "));
    }
    node(cmd.name).command = cmd;
  }
  return [...nodes.values()];
}

/** Options that take a value, everywhere (a name means the same thing in every command): their values are skipped. */
function valueOptions(commands: Command[], global: Record<string, OptionSpec>): Option[] {
  const all = new Map<string, Option>();
  for (const o of [...options(global), ...commands.flatMap((c) => options(c.options))])
    if (o.takesValue) all.set(o.name, o);
  return [...all.values()];
}

/** An option as typed: `--name`, and `-s` too when it has a short form. */
const flags = (o: Option) => [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])];

/**
 * Every spelling of the options that take a value (the word after one is its value, not a command word), and of
 * those whose value is a file (completed as one): what each shell's script matches the previous word against.
 */
function skippedWords(commands: Command[], global: Record<string, OptionSpec>) {
  const values = valueOptions(commands, global);
  return { valueWords: values.flatMap(flags), fileWords: values.filter((o) => o.file).flatMap(flags) };
}

const fileArg = (cmd: Command | undefined) => (cmd?.args ?? []).some((a) => /file/i.test(a));

/** Longest command names first, so that `account ledger` is found before `account`. */
const byLength = (commands: Command[]) =>
  [...commands].sort((a, b) => b.name.split(" ").length - a.name.split(" ").length);

// ---- quoting ----

/** A word for a bash `case` pattern or a double-quoted string. */
const bq = (s: string) => s.replace(/[\\"$`]/g, (c) => `\\${c}`);
/** Inside single quotes (bash, zsh): a quote closes, is escaped, reopens. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** Inside fish single quotes: only `\` and `'` are special. */
const fq = (s: string) => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
/** A zsh `_describe` entry `word:description` (a colon in the word would be escaped; descriptions keep theirs). */
const zd = (word: string, description: string) => sq(`${word.replace(/:/g, "\\:")}:${description}`);

// ---- bash ----

function bash(commands: Command[], global: Record<string, OptionSpec>): string {
  const nodes = tree(commands);
  const { valueWords, fileWords } = skippedWords(commands, global);
  const optionWords = (cmd: Command | undefined) =>
    [...options(cmd?.options), ...options(global)].flatMap(flags).join(" ");
  const branch = (pattern: string, subs: string, opts: string, files: boolean, choices = "") =>
    `    ${pattern}) subs="${bq(subs)}"; opts="${bq(opts)}"; files=${files ? 1 : 0}; choices="${bq(choices)}" ;;`;
  const exact = nodes.map((n) =>
    branch(
      `"${bq(n.path)}"`,
      n.children.map((c) => c.word).join(" "),
      optionWords(n.command),
      n.children.length === 0 && fileArg(n.command),
      (n.command?.choices ?? []).join(" "),
    ),
  );
  const withArgs = byLength(commands).map((c) => branch(`"${bq(c.name)} "*`, "", optionWords(c), fileArg(c)));
  return `# coord shell completion for bash, generated from coord's command table (coord completion bash).
# Load it now:           source <(coord completion bash)
# Or for every session:  coord completion bash > ~/.local/share/bash-completion/completions/coord
_coord() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" words="" w i skip=0
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$w" in
      ${valueWords.map((v) => `"${bq(v)}"`).join("|")}) skip=1 ;;
      -*) ;;
      *) words="\${words:+$words }$w" ;;
    esac
  done
  case "$prev" in
    ${fileWords.length ? fileWords.map((v) => `"${bq(v)}"`).join("|") : '"--no-such-option"'})
      compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    ${valueWords.map((v) => `"${bq(v)}"`).join("|")})
      COMPREPLY=(); return 0 ;;
  esac
  local subs="" opts="" files=0 choices=""
  case "$words" in
${exact.join("\n")}
${withArgs.join("\n")}
    *) return 0 ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n "$subs$choices" ]]; then
    COMPREPLY=($(compgen -W "$subs $choices" -- "$cur"))
  elif ((files)); then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -F _coord coord
`;
}

// ---- zsh ----

function zsh(commands: Command[], global: Record<string, OptionSpec>): string {
  const nodes = tree(commands);
  const { valueWords, fileWords } = skippedWords(commands, global);
  const optionEntries = (cmd: Command | undefined) =>
    [...options(cmd?.options), ...options(global)]
      .flatMap((o) => [
        zd(`--${o.name}`, o.description),
        ...(o.short ? [zd(`-${o.short}`, o.description)] : []),
      ])
      .join(" ");
  const branch = (pattern: string, subs: string, opts: string, files: boolean, choices: string) =>
    `    ${pattern}) subs=(${subs}); opts=(${opts}); files=${files ? 1 : 0}; choices=(${choices}) ;;`;
  const exact = nodes.map((n) =>
    branch(
      sq(n.path),
      n.children.map((c) => zd(c.word, c.summary)).join(" "),
      optionEntries(n.command),
      n.children.length === 0 && fileArg(n.command),
      (n.command?.choices ?? []).map((c) => sq(c)).join(" "),
    ),
  );
  const withArgs = byLength(commands).map((c) =>
    branch(`${sq(`${c.name} `)}*`, "", optionEntries(c), fileArg(c), ""),
  );
  return `#compdef coord
# coord shell completion for zsh, generated from coord's command table (coord completion zsh).
# Load it now:           source <(coord completion zsh)
# Or for every session:  coord completion zsh > "\${fpath[1]}/_coord"   (then restart zsh)
_coord() {
  local -a subs opts choices
  local files=0 w cmdpath="" skip=0 i prev="\${words[CURRENT-1]}"
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$w" in
      (${valueWords.join("|")}) skip=1 ;;
      (-*) ;;
      (*) cmdpath="\${cmdpath:+$cmdpath }$w" ;;
    esac
  done
  case "$prev" in
    (${fileWords.length ? fileWords.join("|") : "--no-such-option"}) _files; return ;;
    (${valueWords.join("|")}) _message 'value'; return ;;
  esac
  case "$cmdpath" in
${exact.join("\n")}
${withArgs.join("\n")}
    (*) return 1 ;;
  esac
  if [[ "\${words[CURRENT]}" == -* ]]; then
    _describe -t options 'option' opts
  elif ((\${#subs} + \${#choices})); then
    ((\${#subs})) && _describe -t commands 'command' subs
    ((\${#choices})) && compadd -a choices
  elif ((files)); then
    _files
  fi
}
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  _coord "$@"
else
  compdef _coord coord
fi
`;
}

// ---- fish ----

function fish(commands: Command[], global: Record<string, OptionSpec>): string {
  const nodes = tree(commands);
  const { valueWords } = skippedWords(commands, global);
  const lines: string[] = [];
  const optionLine = (o: Option, condition?: string) =>
    [
      "complete -c coord",
      condition ? `-n ${fq(condition)}` : "",
      `-l ${o.name}`,
      o.short ? `-s ${o.short}` : "",
      o.takesValue ? (o.file ? "-r -F" : "-r -f") : "",
      `-d ${fq(o.description)}`,
    ]
      .filter(Boolean)
      .join(" ");
  for (const o of options(global)) lines.push(optionLine(o));
  for (const n of nodes) {
    for (const c of n.children)
      lines.push(
        `complete -c coord -f -n ${fq(`__coord_at ${fq(n.path)}`)} -a ${fq(c.word)} -d ${fq(c.summary)}`,
      );
    for (const choice of n.command?.choices ?? [])
      lines.push(`complete -c coord -f -n ${fq(`__coord_at ${fq(n.path)}`)} -a ${fq(choice)}`);
  }
  for (const cmd of commands) {
    for (const o of options(cmd.options)) lines.push(optionLine(o, `__coord_in ${fq(cmd.name)}`));
    if (fileArg(cmd)) lines.push(`complete -c coord -n ${fq(`__coord_in ${fq(cmd.name)}`)} -F`);
  }
  return `# coord shell completion for fish, generated from coord's command table (coord completion fish).
# Load it now:           coord completion fish | source
# Or for every session:  coord completion fish > ~/.config/fish/completions/coord.fish

# The command words typed so far, options and their values left out.
function __coord_words
  set -l tokens (commandline -opc)
  set -e tokens[1]
  set -l out
  set -l skip 0
  for t in $tokens
    if test $skip = 1
      set skip 0
      continue
    end
    switch $t
      case ${valueWords.map(fq).join(" ")}
        set skip 1
      case '-*'
      case '*'
        set -a out $t
    end
  end
  string join ' ' -- $out
end

# The cursor is right after exactly these command words.
function __coord_at
  set -l w (__coord_words)
  test "$w" = "$argv[1]"
end

# The words typed so far name this command (the longest command they start with).
function __coord_in
  set -l w (__coord_words)
  for c in ${byLength(commands)
    .map((c) => fq(c.name))
    .join(" ")}
    if test "$w" = "$c"; or string match -q -- "$c *" "$w"
      test "$c" = "$argv[1]"
      return
    end
  end
  return 1
end

complete -c coord -f
${lines.join("\n")}
`;
}

/** The completion script for `shell`, from these commands and the global options. */
export function completionScript(
  shell: Shell,
  commands: Command[],
  global: Record<string, OptionSpec>,
): string {
  if (shell === "bash") return bash(commands, global);
  if (shell === "zsh") return zsh(commands, global);
  return fish(commands, global);
}
