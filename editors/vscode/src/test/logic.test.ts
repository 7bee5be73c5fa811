// Unit tests of the extension's pure logic, run by node's own test runner (no VS Code needed).
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { renderAnswer, renderContext, statusText } from '../render';
import { COMMANDS, SETTING_KEYS, toInitializationOptions, withoutOwnCommands } from '../settings';

const root = join(__dirname, '..', '..');
const contract = JSON.parse(readFileSync(join(root, '..', 'contract.json'), 'utf8')) as {
  commands: string[];
  settings: string[];
};
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

test('settings become the nested object pith reads, unset values left out', () => {
  const values: Record<string, unknown> = {
    'model.path': '/models/q.gguf',
    'model.threads': 4,
    'model.context': null,
    'remote.url': '',
    'remote.api': 'openai',
    'completion.completion_item_fallback': false,
    'hover.timeout_ms': 0,
  };
  assert.deepEqual(
    toInitializationOptions((key) => values[key]),
    {
      model: { path: '/models/q.gguf', threads: 4 },
      remote: { api: 'openai' },
      completion: { completion_item_fallback: false },
      hover: { timeout_ms: 0 },
    },
  );
});

test('no settings give an empty object', () => {
  assert.deepEqual(toInitializationOptions(() => undefined), {});
});

test('values of the wrong shape are dropped', () => {
  assert.deepEqual(toInitializationOptions((key) => (key === 'model.path' ? { nested: true } : undefined)), {});
});

test('the setting keys and commands are the contract', () => {
  assert.deepEqual([...SETTING_KEYS].sort(), [...contract.settings].sort());
  assert.deepEqual(Object.values(COMMANDS).sort(), [...contract.commands].sort());
});

test('package.json contributes every contract setting and command', () => {
  const properties = Object.keys(manifest.contributes.configuration.properties)
    .filter((key) => key !== 'pith.path' && key !== 'pith.trace.server')
    .map((key) => key.replace(/^pith\./, ''))
    .sort();
  assert.deepEqual(properties, [...contract.settings].sort());
  const commands = manifest.contributes.commands.map((command: { command: string }) => command.command).sort();
  assert.deepEqual(commands, [...contract.commands].sort());
});

test("the server's commands are registered by the client except the extension's own", () => {
  const data = { id: 'x', registerOptions: { commands: ['pith.ask', 'pith.refactor.apply', 'pith.status'] } };
  assert.deepEqual(withoutOwnCommands(data).registerOptions.commands, ['pith.refactor.apply']);
  assert.deepEqual(withoutOwnCommands({ id: 'y', registerOptions: {} }).registerOptions.commands, []);
});

test('answers render their text and sources', () => {
  assert.equal(renderAnswer('plain'), 'plain');
  assert.equal(
    renderAnswer({ answer: 'It parses.', citations: [{ path: 'src/config.rs', line: 12 }, 'README.md'] }),
    'It parses.\n\n**Sources**\n\n- src/config.rs:12\n- README.md',
  );
  assert.equal(renderAnswer(null), '_(no result)_');
  assert.equal(renderAnswer([1]), '```json\n[\n  1\n]\n```');
});

test('context snippets render with 1-based lines, reason and score', () => {
  const markdown = renderContext(
    { snippets: [{ path: 'shapes.py', startLine: 18, endLine: 22, text: 'def area(shape):', reason: 'called here', score: 0.9 }] },
    'python',
  );
  assert.equal(markdown, '### shapes.py:19-23 (called here, score 0.90)\n\n```python\ndef area(shape):\n```');
  assert.equal(renderContext({ snippets: [] }), '_(pith found no context here)_');
  assert.equal(renderContext(undefined), '_(pith found no context here)_');
});

test('the status bar shows the model and the index', () => {
  const shown = statusText({
    model: { path: '/m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf', loaded: true },
    index: { state: 'ready', files: 12, symbols: 340 },
  });
  assert.equal(shown.text, '$(sparkle) pith: qwen2.5-coder-0.5b-instruct-q4_k_m.gguf · ready, 12 files, 340 symbols');
  assert.ok(shown.ok);
  const missing = statusText({ model: null, index: { state: 'indexing' } });
  assert.equal(missing.text, '$(warning) pith: no model · indexing');
  assert.ok(!missing.ok);
  assert.ok(!statusText(undefined).ok);
  assert.equal(statusText({ model: { path: 'a.gguf', loaded: false } }).text, '$(warning) pith: a.gguf (not loaded) · index ?');
});
