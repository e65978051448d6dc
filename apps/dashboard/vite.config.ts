import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Static files for the gateway to serve at /dashboard/ under `default-src 'self'; style-src 'self'`:
 * nothing inlined (no data: URIs, no inline script or style), hashed file names for immutable
 * caching. `npm run dev` proxies the API to a gateway on :3000.
 */
export default defineConfig({
  base: '/dashboard/',
  plugins: [react()],
  resolve: {
    alias: {
      // Only the browser-safe module of contracts (no zod, no Node built-ins) may reach the bundle:
      // importing anything else from it at run time fails the build here.
      '@keyway/contracts': here('../../packages/contracts/src/roles.ts'),
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: true,
  },
  server: {
    proxy: { '/v1': 'http://127.0.0.1:3000', '/auth/v1': 'http://127.0.0.1:3000' },
  },
});
