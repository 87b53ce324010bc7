import tseslint from 'typescript-eslint';

const nodeBuiltins = ['fs', 'child_process', 'net', 'http', 'https', 'os', 'path', 'crypto', 'tls', 'dgram', 'cluster', 'worker_threads', 'ssh2', 'proxmox-api', 'undici'];

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', 'coverage/**', 'test-output/**', '*.js', '*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Only src/adapters talks to ssh2 and proxmox-api on the client side (the lab is the far side).
    files: ['src/**/*.ts'],
    ignores: ['src/adapters/**', 'src/lab/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [
      { name: 'ssh2', message: 'Only src/adapters imports ssh2.' },
      { name: 'proxmox-api', message: 'Only src/adapters imports proxmox-api.' },
    ] }] },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node builtins, no network clients.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodeBuiltins.flatMap((n) => [n, `node:${n}`]).map((name) => ({ name, message: 'Workflow code must stay deterministic: do this in an activity.' })),
      }],
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ group: ['../adapters/*', '../activities/*', '../activities', '../config/load', '../lab/*'], allowTypeImports: true, message: 'Workflows import activities and adapters as types only.' }],
      }],
    },
  },
);
