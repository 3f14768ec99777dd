import { describe, expect, it } from "vitest";
import { imageOf } from "./image.ts";

describe("stream images", () => {
  it("an empty map attribute, as the streams client delivers it, unmarshalls to an empty object", () => {
    expect(imageOf({ output: {}, n: { N: "2" }, nested: { M: { inner: {} } }, list: { L: [{}] } })).toEqual({
      output: {},
      n: 2,
      nested: { inner: {} },
      list: [{}],
    });
  });
});
