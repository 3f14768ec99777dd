import type { TestProject } from "vitest/node";
import { startLocalStack } from "../local/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: {
      url: string;
      adminKey: string;
      tableName: string;
      dynamoEndpoint: string;
      sqsEndpoint: string;
      queueUrls: Record<string, { url: string; dlqUrl: string }>;
    };
  }
}

/** Starts the real local stack once per test run (ephemeral, random ports) and hands its coordinates to tests. */
export default async function setup(project: TestProject) {
  const stack = await startLocalStack({ ephemeral: true, port: 0 });
  project.provide("stack", {
    url: stack.url,
    adminKey: stack.adminKey,
    tableName: stack.tableName,
    dynamoEndpoint: stack.dynamoEndpoint,
    sqsEndpoint: stack.sqsEndpoint,
    queueUrls: stack.queueUrls,
  });
  return () => stack.stop();
}
