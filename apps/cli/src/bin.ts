#!/usr/bin/env node
// The `qbnn` command. Until `qbnn demo` exists this is an end-to-end smoke run that loads the
// built packages in plain node and exercises them.
import { Rng } from '@qbnn/core';

const rng = new Rng(42);
const z = rng.normal(100000);
let m = 0;
let v = 0;
for (const x of z) m += x;
m /= z.length;
for (const x of z) v += (x - m) ** 2;
v /= z.length;
console.log(`qbnn smoke: 100000 normals, mean ${m.toFixed(4)}, variance ${v.toFixed(4)}`);
