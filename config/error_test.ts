import assert from "node:assert/strict";
import { formatError } from "./error.ts";

Deno.test("errors print as FILE:LINE:COL: message, or FILE: message without a position", () => {
  assert.equal(
    formatError({ file: "a.yaml", line: 3, col: 7, message: "weight must be from 0 to 65535" }),
    "a.yaml:3:7: weight must be from 0 to 65535",
  );
  assert.equal(
    formatError({ file: "a.yaml", line: 0, col: 0, message: "file not found" }),
    "a.yaml: file not found",
  );
});
