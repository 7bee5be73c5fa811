// Pure rendering of pith's answers, context snippets and status for the editor (no `vscode`).

/** Markdown for the result of `pith.ask` / `pith.explain` / `pith.memory.list`. */
export function renderAnswer(result: unknown): string {
  if (result === undefined || result === null) {
    return '_(no result)_';
  }
  if (typeof result === 'string') {
    return result;
  }
  if (typeof result === 'object' && !Array.isArray(result)) {
    const record = result as Record<string, unknown>;
    for (const key of ['answer', 'explanation', 'markdown', 'text', 'value', 'message']) {
      const text = record[key];
      if (typeof text === 'string') {
        const citations = Array.isArray(record.citations) ? record.citations : [];
        if (citations.length === 0) {
          return text;
        }
        const sources = citations.map((citation) => `- ${renderCitation(citation)}`);
        return `${text}\n\n**Sources**\n\n${sources.join('\n')}`;
      }
    }
  }
  return '```json\n' + JSON.stringify(result, null, 2) + '\n```';
}

function renderCitation(citation: unknown): string {
  if (typeof citation === 'object' && citation !== null) {
    const record = citation as Record<string, unknown>;
    const where = record.path ?? record.uri ?? '?';
    const line = record.line ?? record.startLine;
    return line === undefined ? String(where) : `${String(where)}:${String(line)}`;
  }
  return String(citation);
}

/** One snippet of a `pith/context` result. */
export interface ContextSnippet {
  uri?: string;
  path?: string;
  startLine?: number;
  endLine?: number;
  text?: string;
  reason?: string;
  score?: number;
}

/** Markdown for a `pith/context` result (`{ snippets: [...] }`). */
export function renderContext(result: unknown, languageId = ''): string {
  const snippets =
    typeof result === 'object' && result !== null
      ? ((result as { snippets?: unknown }).snippets as ContextSnippet[] | undefined)
      : undefined;
  if (!Array.isArray(snippets) || snippets.length === 0) {
    return '_(pith found no context here)_';
  }
  return snippets
    .map((snippet) => {
      // startLine/endLine are 0-based LSP lines; people read 1-based ones.
      const start = typeof snippet.startLine === 'number' ? snippet.startLine + 1 : '?';
      const end = typeof snippet.endLine === 'number' ? snippet.endLine + 1 : '?';
      let header = `### ${snippet.path ?? snippet.uri ?? '?'}:${start}-${end}`;
      if (snippet.reason) {
        const score = typeof snippet.score === 'number' ? `, score ${snippet.score.toFixed(2)}` : '';
        header += ` (${snippet.reason}${score})`;
      }
      return `${header}\n\n\`\`\`${languageId}\n${snippet.text ?? ''}\n\`\`\``;
    })
    .join('\n\n');
}

/** Status bar text and tooltip from a `pith.status` result. */
export function statusText(status: unknown): { text: string; tooltip: string; ok: boolean } {
  if (typeof status !== 'object' || status === null) {
    return { text: '$(error) pith', tooltip: 'pith: no status (is the server running?)', ok: false };
  }
  const record = status as Record<string, unknown>;
  const model = describeModel(record.model);
  const index = describeIndex(record.index);
  return {
    text: `${model.ok ? '$(sparkle)' : '$(warning)'} pith: ${model.short} · ${index}`,
    tooltip: `Model: ${model.long}\nIndex: ${index}\nClick for the full status.`,
    ok: model.ok,
  };
}

function describeModel(model: unknown): { short: string; long: string; ok: boolean } {
  if (model === undefined || model === null || model === false) {
    return { short: 'no model', long: 'none (run `pith model install`)', ok: false };
  }
  if (typeof model === 'string') {
    return { short: baseName(model), long: model, ok: true };
  }
  if (typeof model === 'object') {
    const record = model as Record<string, unknown>;
    const name = String(record.name ?? record.remote ?? record.url ?? (record.path ? baseName(String(record.path)) : 'model'));
    const loaded = record.loaded !== false && record.available !== false && record.ready !== false;
    const long = String(record.path ?? record.url ?? record.remote ?? name);
    return loaded
      ? { short: name, long, ok: true }
      : { short: `${name} (not loaded)`, long: `${long} (not loaded)`, ok: false };
  }
  return { short: String(model), long: String(model), ok: true };
}

function describeIndex(index: unknown): string {
  if (typeof index !== 'object' || index === null) {
    return index === undefined ? 'index ?' : String(index);
  }
  const record = index as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof record.state === 'string') {
    parts.push(record.state);
  }
  if (typeof record.files === 'number') {
    parts.push(`${record.files} files`);
  }
  if (typeof record.symbols === 'number') {
    parts.push(`${record.symbols} symbols`);
  }
  return parts.length > 0 ? parts.join(', ') : 'index';
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
