import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * src/boot.ts as its own entry (a hashed file of a few hundred bytes, no imports), its script put
 * first in index.html's head: module scripts run in document order, so it has started the first
 * requests before the main bundle is evaluated, and the main bundle finds them (src/api.ts). In
 * `vite` dev there is no boot script; the app then asks for itself.
 */
function bootFirst(): Plugin {
  return {
    name: 'keyway-boot-first',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(_html, ctx) {
        const boot = Object.values(ctx.bundle ?? {}).find((c) => c.type === 'chunk' && c.isEntry && c.name === 'boot');
        if (boot === undefined) throw new Error('keyway-boot-first: no boot chunk in the bundle');
        return [{ tag: 'script', attrs: { type: 'module', src: `/dashboard/${boot.fileName}` }, injectTo: 'head-prepend' }];
      },
    },
  };
}

/**
 * Static files for the gateway to serve at /dashboard/ under `default-src 'self'; style-src 'self'`:
 * nothing inlined (no data: URIs, no inline script or style), hashed file names for immutable
 * caching. `npm run dev` proxies the API to a gateway on :3000.
 */
export default defineConfig({
  base: '/dashboard/',
  plugins: [react(), bootFirst()],
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
    rollupOptions: { input: { index: here('index.html'), boot: here('src/boot.ts') } },
  },
  server: {
    proxy: { '/v1': 'http://127.0.0.1:3000', '/auth/v1': 'http://127.0.0.1:3000' },
  },
});
