// Builds the outbox page into dist/ui/web (repo-root relative), where `outbox-sync ui` serves it from.
// `npx vite --config servers/ui/web/vite.config.mts` serves it live and sends /api to a running `outbox-sync ui`.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Paths from this file's URL (decoded: a checkout path may hold spaces), without Node's types in this tsconfig.
const here = decodeURIComponent(new URL('.', import.meta.url).pathname);
const outDir = decodeURIComponent(new URL('../../../dist/ui/web', import.meta.url).pathname);

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir,
    // The folder is outside root: Vite only empties it when told to.
    emptyOutDir: true,
    // Everything from files, nothing inlined: the page's CSP allows scripts and styles from 'self' only.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8090' },
  },
});
