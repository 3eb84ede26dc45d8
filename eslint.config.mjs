// Lint: TypeScript's recommended rules, and workflows/ kept free of I/O (it runs in Temporal's
// deterministic sandbox: everything it needs from outside comes through activities).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tools/', '.data/', 'bin/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware rules: a promise nobody awaits or handles is an error (a rejection that kills the
    // process later, or a step that silently runs out of order).
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-floating-promises': 'error' },
  },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'pg', 'ioredis', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'].map(
            (name) => ({ name, message: 'workflows/ runs in the deterministic sandbox: do I/O in an activity', allowTypeImports: true }),
          ),
          patterns: [
            { group: ['../*', '!../activities'], message: 'workflows/ imports only the workflow SDK (and activities as types)' },
            { group: ['../activities'], message: 'import activities as types only', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);
