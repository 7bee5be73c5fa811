// Unit tests of the extension's pure logic, run by node's own test runner (no VS Code needed).
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { CHANGING_REFRESH_MS, SETTLED_REFRESH_MS, renderAnswer, renderContext, statusRefreshMs, statusText } from '../render';
import { COMMANDS, SETTING_KEYS, explicitValue, toInitializationOptions, withoutOwnCommands } from '../settings';

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

test("only settings the user set are sent, never the manifest's defaults", () => {
  // Each manifest default, as VS Code's inspect() reports an untouched setting.
  const properties = manifest.contributes.configuration.properties as Record<string, { default?: unknown }>;
  const untouched = (key: string) => explicitValue({ defaultValue: properties[`pith.${key}`]?.default });
  assert.deepEqual(toInitializationOptions(untouched), {});
  assert.equal(explicitValue({ defaultValue: 'infill', globalValue: 'openai' }), 'openai');
  assert.equal(explicitValue({ globalValue: 'a', workspaceValue: 'b' }), 'b');
  assert.equal(explicitValue({ globalValue: 'a', workspaceValue: 'b', workspaceFolderValue: 'c' }), 'c');
  assert.equal(explicitValue(undefined), undefined);
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

const MODEL = 'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf';

test('the status bar says the model loads on first use before it does, and the scan progress', () => {
  const shown = statusText({ model: null, modelState: 'notLoaded', modelName: MODEL, loaded: false, index: { state: 'scanning', files: 3, scanned: 3, total: 12 } });
  assert.equal(shown.text, `$(circle-outline) pith: ${MODEL} (loads on first use) · indexing 3/12 files`);
  assert.ok(shown.ok);
  assert.match(shown.tooltip, /not loaded yet, it loads on first use/);
  assert.equal(statusText({ modelState: 'notLoaded', modelName: MODEL, index: { state: 'scanning', files: 0, scanned: 0, total: 0 } }).text, `$(circle-outline) pith: ${MODEL} (loads on first use) · indexing (finding files)`);
  assert.equal(statusText({ modelState: 'notLoaded', modelName: MODEL, index: { state: 'notStarted', files: 0 } }).text, `$(circle-outline) pith: ${MODEL} (loads on first use) · index not started`);
});

test('the status bar shows a model loading, then loaded, with the files indexed', () => {
  const loading = statusText({ model: null, modelState: 'loading', modelName: MODEL, index: { state: 'ready', files: 12 } });
  assert.equal(loading.text, `$(loading~spin) pith: loading ${MODEL}… · 12 files indexed`);
  assert.ok(loading.ok);
  const loaded = statusText({ model: MODEL, modelState: 'loaded', modelName: MODEL, loaded: true, index: { state: 'ready', files: 1 } });
  assert.equal(loaded.text, `$(sparkle) pith: ${MODEL} · 1 file indexed`);
  assert.ok(loaded.ok);
  assert.match(loaded.tooltip, /^Model: .*: loaded\nIndex: 1 file indexed\n/);
});

test('the status bar shows the model error, and a failed scan', () => {
  const failed = statusText({
    model: null,
    modelState: 'error',
    modelName: 'missing.gguf',
    error: 'model file not found: /m/missing.gguf',
    index: { state: 'failed', files: 2 },
  });
  assert.equal(failed.text, '$(error) pith: model error · indexing failed (2 files indexed)');
  assert.ok(!failed.ok);
  assert.match(failed.tooltip, /missing\.gguf: model file not found: \/m\/missing\.gguf/);
});

test('the status bar without a server, or from an older server', () => {
  const none = statusText(undefined);
  assert.equal(none.text, '$(error) pith: not running');
  assert.ok(!none.ok);
  assert.equal(statusText({ model: 'a.gguf', loaded: true, indexedFiles: 4 }).text, '$(sparkle) pith: a.gguf · 4 files indexed');
  assert.equal(statusText({ model: null, loaded: false }).text, '$(circle-outline) pith: model not loaded · index unknown');
});

test('the status is asked again soon while the model loads or the workspace is scanned', () => {
  assert.equal(statusRefreshMs({ modelState: 'loading', index: { state: 'ready' } }), CHANGING_REFRESH_MS);
  assert.equal(statusRefreshMs({ modelState: 'loaded', index: { state: 'scanning' } }), CHANGING_REFRESH_MS);
  assert.equal(statusRefreshMs({ modelState: 'notLoaded', index: { state: 'ready' } }), SETTLED_REFRESH_MS);
  assert.equal(statusRefreshMs({ modelState: 'loaded', index: { state: 'ready' } }), SETTLED_REFRESH_MS);
  assert.equal(statusRefreshMs(undefined), SETTLED_REFRESH_MS);
  assert.ok(CHANGING_REFRESH_MS < SETTLED_REFRESH_MS);
});

test('untrusted workspaces are declared unsupported, with the reason', () => {
  const untrusted = manifest.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, false);
  assert.match(untrusted.description, /config/);
});
