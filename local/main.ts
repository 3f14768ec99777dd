import { optionsFromEnv, runLocalStack } from "./run.ts";

/** `npm start`: the whole stack on PORT (default 3000). Ctrl-C / SIGTERM stops every child process. */
runLocalStack(optionsFromEnv()).catch((err: Error) => {
  console.error(`coordinator failed to start: ${err.message}`);
  process.exit(1);
});
