// Writes aws-cron-parser.json: the next three times of each cron expression
// below after each start, as the npm package aws-cron-parser 1.1.12 (MIT,
// an implementation of AWS's six-field cron that nobody here wrote)
// computes them, in UTC (the package knows no time zones). schedexpr's
// TestAgainstAWSCronParser checks itself against the file.
//
//   cd "$(mktemp -d)" && npm install aws-cron-parser@1.1.12 &&
//   node /path/to/aws-cron-parser.mjs > /path/to/aws-cron-parser.json
import { createRequire } from "node:module";
import { join } from "node:path";
const require = createRequire(join(process.cwd(), "noop.js"));
const parser = require("aws-cron-parser");
const exprs = [
  "0 3 1 */2 ? *", "0 10 * * ? *", "15 12 * * ? *", "0 18 ? * MON-FRI *", "0 8 1 * ? *",
  "0/15 * * * ? *", "0/10 * ? * MON-FRI *", "0/5 8-17 ? * MON-FRI *", "0 9 ? * 2#1 *", "0 12 ? * 6L *",
  "0 0 L * ? *", "0 0 LW * ? *", "0 0 15W * ? *", "0 0 1W * ? *", "30 2 29 2 ? *",
  "0 0 ? * SUN *", "0 0 ? * 1,4,7 *", "5,35 */6 * * ? *", "0 0 1 1 ? 2027-2030", "0 12 ? * 3#2 *",
  "0 6 ? JAN,JUL * *", "45 23 31 * ? *", "0 0 ? * FRI-MON *", "10-20/5 4 * * ? *", "0 0 1-7 * ? *",
];
const starts = ["2026-12-06T04:00:00Z", "2027-02-27T23:59:00Z", "2028-02-28T12:00:00Z"];
const out = [];
for (const expr of exprs) {
  const cron = parser.parse(expr);
  for (const start of starts) {
    let at = new Date(start);
    const next = [];
    try {
      for (let i = 0; i < 3; i++) {
        at = parser.next(cron, at);
        if (!at) break;
        next.push(at.toISOString());
      }
    } catch (e) {
      // The package fails on some W cases ("should not happen"): left out.
      console.error(`${expr} from ${start}: ${e.message}`);
      continue;
    }
    out.push({ expr, start, next });
  }
}
console.log(JSON.stringify(out, null, 1));
