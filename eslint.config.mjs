// ESLint 10 flat config. TypeScript is linted with type information (the four rules STYLE.md asks
// for); the plain-Node scripts and configs are linted without it.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * Import boundaries (STYLE, Layout): an app never imports another app's files; a package never
 * imports an app; nobody reaches into a package's files by path or by subpath: a package is
 * `@keyway/<name>`, its index. Checked with ESLint's own no-restricted-imports, on the import
 * text: a relative import is judged by how far it climbs from the file's own depth, so no
 * resolver is needed (a resolver-based plugin would also see `@keyway/x` land in packages/x/src
 * through the tsconfig paths, and need teaching that this is the allowed way in).
 * Root code (test/, bench/, scripts/) belongs to no app: the platform's tests may set a scene
 * with an app's module (test/e2e/relay-crash writes through identity's event store), and still
 * reach packages only by name. `require()` in the plain-Node scripts is not checked.
 */
const APPS = ['audit-log', 'contacts', 'gateway', 'identity', 'journeys'];
const MAX_DEPTH = 8;
const up = (n) => `(\\.\\./){${n}}`;
const byName = [
  { regex: `^@keyway/(${APPS.join('|')})(/|$)`, message: 'An app is not a library: meet it over NATS (contracts), never by importing it.' },
  { regex: '^@keyway/[^/]+/.', message: "Import a package by its name only (`@keyway/<pkg>`): its index is its public face, not its files." },
];
/** For a file `depth` folders below its app's (or package's) root: imports that leave it for `kind`. */
function boundary(kind, depth) {
  const own = kind === 'apps' ? "another app's files (or its own by a detour)" : "another package's files";
  return {
    files: [`${kind}/*/${'*/'.repeat(depth)}*.{ts,tsx,mts,mjs}`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...byName,
            { regex: `^${up(depth + 1)}(?!\\.\\./)`, message: `This climbs into ${own}: use \`@keyway/<pkg>\` for a package; an app is reached over NATS.` },
            { regex: `^${up(depth + 2)}(apps|packages)/`, message: 'This reaches into apps/ or packages/ by path: use `@keyway/<pkg>`; an app is reached over NATS.' },
            { regex: `^${up(depth + 3)}`, message: 'This climbs out of the repository.' },
          ],
        },
      ],
    },
  };
}
const boundaries = [
  ...['apps', 'packages'].flatMap((kind) => Array.from({ length: MAX_DEPTH }, (_, depth) => boundary(kind, depth))),
  {
    files: ['{test,bench,scripts}/**/*.{ts,mts,mjs}'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...byName, { regex: '^(\\.\\./)*packages/', message: 'Import a package by its name (`@keyway/<pkg>`), not by path.' }] },
      ],
    },
  },
];

export default defineConfig(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/coverage/**', '**/.turbo/**', '.keyway/**'],
  },
  {
    // .tsx: the dashboard (apps/dashboard, its own tsconfig with the DOM and JSX).
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // One TypeScript program per tsconfig, shared by every file: fast enough on 2 cores.
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
        // Nest injects constructor parameters by their emitted types. With these two on, the
        // scope analysis counts a class named in decorated positions as a value use, and
        // consistent-type-imports leaves files with decorators alone, so it never turns an
        // injected class into an `import type` (which would break DI at run time).
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
      },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        // A `default` that handles the rest on purpose is fine; a missing case with no default is not.
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { ecmaVersion: 2023 },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-var': 'error',
      'prefer-const': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    // apps/dashboard's package is `"type": "module"`: its plain-JS files (the bench) are ES modules.
    files: ['apps/dashboard/**/*.js'],
    languageOptions: { sourceType: 'module' },
  },
  ...boundaries,
);
