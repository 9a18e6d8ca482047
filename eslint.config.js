// Lint gate. Besides style, it enforces the layer order of docs/architecture.md: a module may
// import only from its own layer and the layers below it.
import tseslint from 'typescript-eslint'

const base = ['errors', 'util', 'native']
const layers = {
  errors: [],
  util: ['errors'],
  native: ['errors', 'util'],
  format: [...base],
  io: [...base],
  dlm: [...base],
  fuse: [...base],
  lvm: [...base, 'format', 'io', 'dlm'],
  mirror: [...base, 'format', 'io', 'lvm'],
  thin: [...base, 'format'],
  replication: [...base, 'format', 'io', 'lvm', 'mirror', 'thin'],
  engine: [...base, 'format', 'io', 'lvm', 'mirror', 'thin', 'replication', 'dlm', 'fuse'],
  cli: [...base, 'format', 'io', 'lvm', 'mirror', 'thin', 'replication', 'dlm', 'fuse', 'engine'],
}
const all = Object.keys(layers)

const layerRules = all.map((layer) => {
  const forbidden = all.filter((other) => other !== layer && !layers[layer].includes(other))
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          ...forbidden.map((other) => ({
            group: [`**/${other}/*`, `**/${other}/**`, `../${other}`, `../../${other}`],
            message: `layer "${layer}" may not import from "${other}" (see docs/architecture.md)`,
          })),
          // A layer's entry point is its index.ts: what it does not export there is private to it.
          ...layers[layer].map((below) => ({
            group: [`**/${below}/**`, `!**/${below}/index.js`],
            message: `import layer "${below}" through its index.js, not one of its files`,
          })),
        ],
      }],
    },
  }
})

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'prebuilds/**', '.tap/**', 'lvmfs-demo/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true }],
      'no-console': 'off',
    },
  },
  {
    // tap's t.test() returns a promise that tap itself tracks.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/engine/**'],
    rules: { 'no-console': 'error' },
  },
  ...layerRules,
)
