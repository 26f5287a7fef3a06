import type { ModuleDef } from '../core/module.js';

// biome-ignore lint/suspicious/noExplicitAny: the registry holds modules of every state type
export const modules: Record<string, ModuleDef<any>> = {};
