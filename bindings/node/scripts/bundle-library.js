#!/usr/bin/env node
'use strict';
// Copies a built libbeckon into prebuilds/<platform>-<arch>/, where the package
// finds it without BECKON_LIBRARY, so that `npm pack` makes a self-contained
// package for this platform.
//
//   node scripts/bundle-library.js [LIBRARY_DIR]
//
// LIBRARY_DIR defaults to $BECKON_LIB_DIR, else the repository's target/release.

const fs = require('node:fs');
const path = require('node:path');
const { libraryFileName } = require('../lib/native');

const packageDir = path.join(__dirname, '..');
const libraryDir = path.resolve(
  process.argv[2] ?? process.env.BECKON_LIB_DIR ?? path.join(packageDir, '..', '..', 'target', 'release'),
);
const name = libraryFileName();
const source = path.join(libraryDir, name);
if (!fs.existsSync(source)) {
  console.error(`bundle-library: ${source} does not exist (build it with cargo build --release --lib)`);
  process.exit(1);
}
const targetDir = path.join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(targetDir, { recursive: true });
fs.copyFileSync(source, path.join(targetDir, name));
console.log(`bundle-library: ${source} -> ${path.relative(packageDir, path.join(targetDir, name))}`);
