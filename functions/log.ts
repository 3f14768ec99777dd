import { Logger } from "@aws-lambda-powertools/logger";

/** Structured JSON logs (Powertools). Never pass a raw API key here: keys are redacted at the auth boundary. */
export const log = new Logger({
  serviceName: "coordinator",
  logLevel: (process.env.COORD_LOG_LEVEL as "INFO" | undefined) ?? (process.env.VITEST ? "WARN" : "INFO"),
});
