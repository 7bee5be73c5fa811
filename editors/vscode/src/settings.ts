// Pure logic of the extension (no `vscode` import, so plain node tests can load it): the setting
// keys pith reads, VS Code settings -> initializationOptions, the commands the extension owns.

/** The settings pith reads (editors/contract.json); each is `pith.<key>` in VS Code. */
export const SETTING_KEYS = [
  'model.path',
  'model.threads',
  'model.context',
  'remote.url',
  'remote.api',
  'remote.model',
  'remote.api_key_env',
  'completion.budget_tokens',
  'completion.debounce_ms',
  'completion.max_tokens',
  'completion.completion_item_fallback',
  'completion.item_budget_ms',
  'hover.explain',
  'hover.timeout_ms',
] as const;

/** Commands pith understands (editors/contract.json); the extension registers each itself. */
export const COMMANDS = {
  ask: 'pith.ask',
  explain: 'pith.explain',
  status: 'pith.status',
  context: 'pith.context',
  memoryList: 'pith.memory.list',
  memoryClear: 'pith.memory.clear',
} as const;

/** The custom request behind `pith.context`. */
export const CONTEXT_REQUEST = 'pith/context';

export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/**
 * The nested object pith reads as initializationOptions / didChangeConfiguration settings (it
 * mirrors `.pith/config.toml`), from a lookup of `pith.<key>` values. Unset values (undefined,
 * null, empty strings) are left out so pith's own defaults and `.pith/config.toml` apply.
 */
export function toInitializationOptions(get: (key: string) => unknown): JsonObject {
  const options: JsonObject = {};
  for (const key of SETTING_KEYS) {
    const value = get(key);
    if (value === undefined || value === null || value === '') {
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      continue;
    }
    const [section, name] = key.split('.');
    const table = (options[section] ??= {}) as JsonObject;
    table[name] = value;
  }
  return options;
}

/** What `WorkspaceConfiguration.inspect` returns for one setting (the parts read here). */
export interface InspectedSetting {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value the user set (folder over workspace over user settings), never the manifest's
 * default: a default such as `remote.api = "infill"` sent on its own would be a `[remote]`
 * table without a `url`, which pith rejects, and it would hide `.pith/config.toml`.
 */
export function explicitValue(inspected: InspectedSetting | undefined): unknown {
  return inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
}

/** Registration data of the server's executeCommandProvider, as vscode-languageclient sees it. */
export interface CommandRegistration {
  id: string;
  registerOptions: { commands?: string[] };
}

/**
 * The server's command registration less the commands this extension registers itself: both
 * registering one id makes VS Code throw, and the extension's handlers ask for the arguments.
 */
export function withoutOwnCommands(data: CommandRegistration): CommandRegistration {
  const own = new Set<string>(Object.values(COMMANDS));
  return {
    ...data,
    registerOptions: {
      ...data.registerOptions,
      commands: (data.registerOptions.commands ?? []).filter((command) => !own.has(command)),
    },
  };
}
