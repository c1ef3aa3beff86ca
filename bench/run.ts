/**
 * `npm run bench` (writes bench/results.md) and `npm run bench:smoke` (prints a short run):
 * starts DynamoDB Local, runs every section against it and the Transmit emulator, writes the report.
 * `--save <file>` also keeps the raw results as JSON; `--render <file>` writes the report from
 * such a file again without measuring anything.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDynamoDbLocal } from '../local/dynamodb-local';
import { type BenchResults, runBench } from './bench';
import { ROOT } from './bundle';
import { FULL, SMOKE } from './profiles';
import { renderReport } from './report';
import { renderSweepChart } from './sweep-chart';

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const smoke = args.includes('--smoke');
const save = option('--save');
const render = option('--render');
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const resultsFile = join(ROOT, 'bench', 'results.md');
const chartFile = join(ROOT, 'bench', 'results-sweep.svg');
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

// JSON has no Infinity (the ideal rate of a case without latency or rate limit).
const replacer = (_key: string, value: unknown) => (value === Number.POSITIVE_INFINITY ? 'Infinity' : value);
const reviver = (_key: string, value: unknown) => (value === 'Infinity' ? Number.POSITIVE_INFINITY : value);

if (render) {
  const saved = JSON.parse(readFileSync(render, 'utf8'), reviver) as BenchResults;
  writeFileSync(resultsFile, renderReport(saved));
  writeFileSync(chartFile, renderSweepChart(saved.sweep.cases));
  log(`wrote ${resultsFile} from ${render}`);
} else {
  log('starting DynamoDB Local');
  const dynamo = await startDynamoDbLocal({ inMemory: true });
  try {
    const { results, markdown } = await runBench({
      dynamoEndpoint: dynamo.endpoint,
      profile: smoke ? SMOKE : FULL,
      progress: log,
    });
    if (save) writeFileSync(save, JSON.stringify(results, replacer));
    if (smoke) {
      process.stdout.write(markdown);
    } else {
      writeFileSync(resultsFile, markdown);
      writeFileSync(chartFile, renderSweepChart(results.sweep.cases));
      log(`wrote ${resultsFile} and ${chartFile}`);
    }
  } finally {
    await dynamo.stop();
  }
}
