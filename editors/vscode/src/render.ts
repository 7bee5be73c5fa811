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
    return { text: '$(error) pith: not running', tooltip: 'pith: no status (is the server running? see the pith output channel)', ok: false };
  }
  const record = status as Record<string, unknown>;
  const model = describeModel(record);
  const index = describeIndex(record.index, record.indexedFiles);
  return {
    text: `${model.icon} pith: ${model.short} · ${index}`,
    tooltip: `Model: ${model.long}\nIndex: ${index}\nClick for the full status.`,
    ok: model.ok,
  };
}

/**
 * Milliseconds until the status should be asked again: soon while something is changing (the
 * model loading, the workspace being scanned), rarely once it is settled.
 */
export function statusRefreshMs(status: unknown): number {
  if (typeof status !== 'object' || status === null) {
    return SETTLED_REFRESH_MS;
  }
  const record = status as Record<string, unknown>;
  const index = record.index as Record<string, unknown> | undefined;
  const changing =
    record.modelState === 'loading' ||
    (typeof index === 'object' && index !== null && (index.state === 'scanning' || index.state === 'notStarted'));
  return changing ? CHANGING_REFRESH_MS : SETTLED_REFRESH_MS;
}

export const CHANGING_REFRESH_MS = 1_000;
export const SETTLED_REFRESH_MS = 15_000;

function describeModel(record: Record<string, unknown>): { icon: string; short: string; long: string; ok: boolean } {
  const name = typeof record.modelName === 'string' && record.modelName !== '' ? record.modelName : typeof record.model === 'string' ? record.model : 'model';
  const error = typeof record.error === 'string' ? record.error : typeof record.lastError === 'string' ? record.lastError : '';
  switch (record.modelState) {
    case 'notLoaded':
      return { icon: '$(circle-outline)', short: `${name} (loads on first use)`, long: `${name}: not loaded yet, it loads on first use`, ok: true };
    case 'loading':
      return { icon: '$(loading~spin)', short: `loading ${name}…`, long: `${name}: loading`, ok: true };
    case 'loaded':
      return { icon: '$(sparkle)', short: name, long: `${name}: loaded`, ok: true };
    case 'error':
      return { icon: '$(error)', short: 'model error', long: `${name}: ${error || 'could not be loaded'}`, ok: false };
  }
  // A server without `modelState`: the loaded model's name, or nothing loaded.
  if (typeof record.model === 'string' && record.loaded !== false) {
    return { icon: '$(sparkle)', short: record.model, long: `${record.model}: loaded`, ok: true };
  }
  if (error) {
    return { icon: '$(error)', short: 'model error', long: error, ok: false };
  }
  return { icon: '$(circle-outline)', short: 'model not loaded', long: 'not loaded (it loads on first use)', ok: true };
}

function describeIndex(index: unknown, indexedFiles: unknown): string {
  const files = (count: unknown) => `${typeof count === 'number' ? count : '?'} ${count === 1 ? 'file' : 'files'}`;
  if (typeof index !== 'object' || index === null) {
    return typeof indexedFiles === 'number' ? `${files(indexedFiles)} indexed` : 'index unknown';
  }
  const record = index as Record<string, unknown>;
  switch (record.state) {
    case 'notStarted':
      return 'index not started';
    case 'scanning':
      return typeof record.total === 'number' && record.total > 0
        ? `indexing ${String(record.scanned ?? 0)}/${record.total} files`
        : 'indexing (finding files)';
    case 'ready':
      return `${files(record.files)} indexed`;
    case 'failed':
      return `indexing failed (${files(record.files)} indexed)`;
  }
  return typeof record.files === 'number' ? `${files(record.files)} indexed` : 'index unknown';
}
