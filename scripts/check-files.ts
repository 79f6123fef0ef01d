/**
 * File hygiene checks for pre-commit and `npm run check`: trailing whitespace, final newline,
 * YAML validity and files over 1 MB (samples/ excepted: the demo's small CC0 slide lives there). Golden data in
 * test/fixtures/ is kept byte for byte as its reference tools wrote it: only its size is checked.
 * Usage: tsx scripts/check-files.ts [--fix] [files...]   (no files: every tracked file)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const args = process.argv.slice(2);
const fix = args.includes('--fix');
let files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  files = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
}
const MAX_BYTES = 1024 * 1024;
const problems: string[] = [];

for (const file of files) {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    continue; // deleted in the working tree
  }
  if (size > MAX_BYTES && !file.startsWith('samples/')) {
    problems.push(`${file}: ${(size / 1048576).toFixed(1)} MB is over the 1 MB limit`);
  }
  if (file.startsWith('test/fixtures/')) continue;
  const buf = readFileSync(file);
  if (buf.includes(0)) continue; // binary
  let text = buf.toString('utf8');
  const original = text;
  if (/[ \t]+$/m.test(text)) {
    if (fix) text = text.replace(/[ \t]+$/gm, '');
    else problems.push(`${file}: trailing whitespace`);
  }
  if (text.length > 0 && !text.endsWith('\n')) {
    if (fix) text += '\n';
    else problems.push(`${file}: no newline at end of file`);
  } else if (text.endsWith('\n\n')) {
    if (fix) text = text.replace(/\n+$/, '\n');
    else problems.push(`${file}: extra blank lines at end of file`);
  }
  if (fix && text !== original) writeFileSync(file, text);
  if (/\.ya?ml$/.test(file)) {
    for (const doc of parseAllDocuments(text)) {
      for (const err of doc.errors) problems.push(`${file}: invalid YAML: ${err.message.split('\n')[0]}`);
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
