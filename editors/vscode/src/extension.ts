// The pith VS Code extension: starts `pith serve` through vscode-languageclient (which brings
// hover, definition, symbols, code actions and LSP 3.18 inline completion), sends the `pith.*`
// settings, and adds the pith commands and a status bar item fed by `pith.status` (asked again
// after each pith request, on the server's indexing progress, and on a timer that is quick
// while the model loads or the workspace is scanned).
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  WorkDoneProgress,
} from 'vscode-languageclient/node';

import { renderAnswer, renderContext, statusRefreshMs, statusText } from './render';
import { COMMANDS, CONTEXT_REQUEST, CommandRegistration, explicitValue, toInitializationOptions, withoutOwnCommands } from './settings';

/** The server's indexing progress token (and `pith/indexing/N` for folders added later). */
const INDEXING_PROGRESS = 'pith/indexing';
/** Requests settle before the status is asked again (one ask for a burst of them). */
const AFTER_REQUEST_MS = 200;

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
let statusTimer: ReturnType<typeof setTimeout> | undefined;

/** Asks for the status after `delay` ms, replacing any ask already planned. */
function scheduleStatus(delay: number): void {
  if (statusTimer !== undefined) {
    clearTimeout(statusTimer);
  }
  statusTimer = setTimeout(() => {
    statusTimer = undefined;
    void refreshStatus();
  }, delay);
}

/** Runs a request through the client, then refreshes the status (it may have loaded the model). */
async function thenRefresh<T>(request: Thenable<T> | T): Promise<T> {
  try {
    return await request;
  } finally {
    scheduleStatus(AFTER_REQUEST_MS);
  }
}

function settings() {
  const configuration = vscode.workspace.getConfiguration('pith');
  return toInitializationOptions((key) => explicitValue(configuration.inspect(key)));
}

function createClient(): LanguageClient {
  const command = vscode.workspace.getConfiguration('pith').get<string>('path') || 'pith';
  const serverOptions: ServerOptions = { command, args: ['serve'] };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'file', language: 'rust' },
    ],
    initializationOptions: settings(),
    outputChannel: output,
    middleware: {
      provideInlineCompletionItems: (document, position, context, token, next) =>
        thenRefresh(next(document, position, context, token)),
      provideHover: (document, position, token, next) => thenRefresh(next(document, position, token)),
      provideCodeActions: (document, range, context, token, next) =>
        thenRefresh(next(document, range, context, token)),
    },
  };
  const created = new LanguageClient('pith', 'pith', serverOptions, clientOptions);
  // The extension registers the pith.* commands itself (they prompt for their arguments);
  // letting the client register the same ids from executeCommandProvider would throw.
  const feature = created.getFeature(ExecuteCommandRequest.method as never) as unknown as
    | { register(data: CommandRegistration): void }
    | undefined;
  if (feature) {
    const register = feature.register.bind(feature);
    feature.register = (data) => register(withoutOwnCommands(data));
  }
  return created;
}

async function startClient(): Promise<void> {
  client = createClient();
  try {
    await client.start();
  } catch (error) {
    const path = vscode.workspace.getConfiguration('pith').get<string>('path') || 'pith';
    void vscode.window.showErrorMessage(
      `pith: could not start \`${path} serve\`: ${String(error)}. Set "pith.path" or put pith on PATH.`,
    );
    updateStatus(undefined);
    return;
  }
  // The first scan reports under INDEXING_PROGRESS: each report moves the status bar's count.
  client.onProgress(WorkDoneProgress.type, INDEXING_PROGRESS, () => scheduleStatus(AFTER_REQUEST_MS));
  await refreshStatus();
}

async function restartClient(): Promise<void> {
  const previous = client;
  client = undefined;
  if (previous) {
    await previous.stop().catch(() => undefined);
  }
  await startClient();
}

function requireClient(): LanguageClient | undefined {
  if (!client || !client.isRunning()) {
    void vscode.window.showErrorMessage('pith: the language server is not running (see the pith output channel).');
    return undefined;
  }
  return client;
}

async function execute(command: string, args: unknown[] = []): Promise<unknown> {
  const running = requireClient();
  if (!running) {
    return undefined;
  }
  return thenRefresh(running.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }));
}

async function showMarkdown(markdown: string): Promise<void> {
  const document = await vscode.workspace.openTextDocument({ content: markdown, language: 'markdown' });
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

async function withProgress<T>(title: string, work: () => Promise<T>): Promise<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, work);
}

async function runAndShow(title: string, command: string, args: unknown[]): Promise<void> {
  try {
    const result = await withProgress(title, () => execute(command, args));
    if (result !== undefined || client?.isRunning()) {
      await showMarkdown(renderAnswer(result));
    }
  } catch (error) {
    void vscode.window.showErrorMessage(`pith: ${command} failed: ${String(error)}`);
  }
}

async function ask(question?: string): Promise<void> {
  const asked =
    typeof question === 'string'
      ? question
      : await vscode.window.showInputBox({ prompt: 'Ask pith about this codebase', placeHolder: 'Where is the config parsed?' });
  if (asked && asked.trim() !== '') {
    await runAndShow('pith is thinking…', COMMANDS.ask, [asked]);
  }
}

async function explain(...args: unknown[]): Promise<void> {
  if (args.length >= 2) {
    // Called with [uri, range], e.g. from a pith code action.
    await runAndShow('pith is explaining…', COMMANDS.explain, args);
    return;
  }
  const editor = vscode.window.activeTextEditor;
  const running = requireClient();
  if (!editor || !running) {
    return;
  }
  const selection = editor.selection.isEmpty ? editor.document.lineAt(editor.selection.active.line).range : editor.selection;
  const converter = running.code2ProtocolConverter;
  await runAndShow('pith is explaining…', COMMANDS.explain, [
    converter.asUri(editor.document.uri),
    converter.asRange(selection),
  ]);
}

async function showContext(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const running = requireClient();
  if (!editor || !running) {
    return;
  }
  const params = {
    ...running.code2ProtocolConverter.asTextDocumentPositionParams(editor.document, editor.selection.active),
    budgetTokens: vscode.workspace.getConfiguration('pith').get<number | null>('completion.budget_tokens') ?? undefined,
  };
  try {
    const result = await withProgress('pith is gathering context…', () => running.sendRequest(CONTEXT_REQUEST, params));
    await showMarkdown(renderContext(relativePaths(result), editor.document.languageId));
  } catch (error) {
    void vscode.window.showErrorMessage(`pith: ${CONTEXT_REQUEST} failed: ${String(error)}`);
  }
}

/** The snippets' paths relative to the workspace (pith sends absolute ones). */
function relativePaths(result: unknown): unknown {
  const snippets = (result as { snippets?: { path?: string }[] } | null)?.snippets;
  if (!Array.isArray(snippets)) {
    return result;
  }
  return {
    snippets: snippets.map((snippet) =>
      typeof snippet.path === 'string' ? { ...snippet, path: vscode.workspace.asRelativePath(snippet.path) } : snippet,
    ),
  };
}

function updateStatus(status: unknown): void {
  const shown = statusText(status);
  statusItem.text = shown.text;
  statusItem.tooltip = shown.tooltip;
  statusItem.backgroundColor = shown.ok ? undefined : new vscode.ThemeColor('statusBarItem.warningBackground');
  statusItem.show();
}

/** Asks the server for its status, shows it, and plans the next ask (soon while it changes). */
async function refreshStatus(): Promise<unknown> {
  let status: unknown = undefined;
  if (client && client.isRunning()) {
    try {
      status = await client.sendRequest(ExecuteCommandRequest.type, { command: COMMANDS.status, arguments: [] });
    } catch {
      status = undefined;
    }
  }
  updateStatus(status);
  if (statusTimer === undefined) {
    scheduleStatus(statusRefreshMs(status));
  }
  return status;
}

async function showStatus(): Promise<void> {
  const status = await refreshStatus();
  output.info(`pith.status: ${JSON.stringify(status, null, 2)}`);
  await showMarkdown('# pith status\n\n' + renderAnswer(status ?? 'The pith language server is not running.'));
}

async function clearMemory(): Promise<void> {
  const answer = await vscode.window.showWarningMessage("Clear pith's session memory?", { modal: true }, 'Clear');
  if (answer === 'Clear') {
    try {
      await execute(COMMANDS.memoryClear);
      void vscode.window.showInformationMessage('pith: session memory cleared.');
    } catch (error) {
      void vscode.window.showErrorMessage(`pith: clearing memory failed: ${String(error)}`);
    }
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('pith', { log: true });
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = COMMANDS.status;
  context.subscriptions.push(
    output,
    statusItem,
    { dispose: () => statusTimer !== undefined && clearTimeout(statusTimer) },
    vscode.commands.registerCommand(COMMANDS.ask, ask),
    vscode.commands.registerCommand(COMMANDS.explain, explain),
    vscode.commands.registerCommand(COMMANDS.context, showContext),
    vscode.commands.registerCommand(COMMANDS.status, showStatus),
    vscode.commands.registerCommand(COMMANDS.memoryList, () => runAndShow('pith memory…', COMMANDS.memoryList, [])),
    vscode.commands.registerCommand(COMMANDS.memoryClear, clearMemory),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration('pith.path')) {
        await restartClient();
      } else if (event.affectsConfiguration('pith') && client?.isRunning()) {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: settings() });
        await refreshStatus();
      }
    }),
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  if (client) {
    await client.stop();
  }
}
