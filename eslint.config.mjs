// ESLint 10 flat config. TypeScript is linted with type information (the four rules STYLE.md asks
// for); the plain-Node scripts and configs are linted without it.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/coverage/**', '**/.turbo/**', '.keyway/**'],
  },
  {
    files: ['**/*.ts'],
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
);
