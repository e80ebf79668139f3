// esbuild bundles the stylesheet imported by main.tsx into its own .css file (scripts/build/dashboard.ts).
declare module "*.css";
