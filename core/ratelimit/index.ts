export { assertQueuedQuota, DEFAULT_MAX_QUEUED_PER_ACCOUNT, maxQueuedPerAccount } from "./quota.ts";
export {
  consume,
  consumeLocal,
  DEFAULT_LIMITS,
  type Decision,
  envName,
  forgetHints,
  type Limit,
  limitFor,
  ROUTE_CLASSES,
  type RouteClass,
} from "./ratelimit.ts";
