#!/usr/bin/env node
/*
 * Extracts the compact schema subset the lab's PVE API validates against.
 *
 * Input: the pve-docs 9.1.3 apidata dump as JSON (default /work/shared/reference/pve-api-schema.json).
 * Output: src/lab/pve-api/schema-subset.json — { "<path>": { "<METHOD>": { parameters, protected } } } for exactly
 * the paths/methods the lab serves. Prose fields are dropped (the validator needs only the machine-readable parts),
 * which keeps the file small enough to commit and to load at lab start.
 *
 * Usage: node scripts/gen-pve-schema.js [input.json] [output.json]
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS script, run with node directly */
const fs = require('fs');
const path = require('path');

const SERVED = {
  '/version': ['GET'],
  '/access/ticket': ['POST'],
  '/access/users': ['GET', 'POST'],
  '/access/users/{userid}': ['GET'],
  '/access/users/{userid}/token': ['GET'],
  '/access/users/{userid}/token/{tokenid}': ['GET', 'POST', 'DELETE'],
  '/cluster/nextid': ['GET'],
  '/nodes': ['GET'],
  '/nodes/{node}/status': ['GET'],
  '/nodes/{node}/hardware/pci': ['GET'],
  '/nodes/{node}/storage': ['GET'],
  '/nodes/{node}/storage/{storage}/content': ['GET'],
  '/nodes/{node}/tasks': ['GET'],
  '/nodes/{node}/tasks/{upid}/status': ['GET'],
  '/nodes/{node}/tasks/{upid}/log': ['GET'],
  '/nodes/{node}/vzdump': ['POST'],
  '/nodes/{node}/lxc': ['GET', 'POST'],
  '/nodes/{node}/lxc/{vmid}': ['DELETE'],
  '/nodes/{node}/lxc/{vmid}/config': ['GET', 'PUT'],
  '/nodes/{node}/lxc/{vmid}/status/current': ['GET'],
  '/nodes/{node}/lxc/{vmid}/status/start': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/stop': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/shutdown': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/reboot': ['POST'],
  '/nodes/{node}/qemu': ['GET'],
  '/nodes/{node}/qemu/{vmid}/config': ['GET', 'PUT', 'POST'],
  '/nodes/{node}/qemu/{vmid}/status/current': ['GET'],
  '/nodes/{node}/qemu/{vmid}/status/start': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/stop': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/shutdown': ['POST'],
};

// Prose only: the validator never reads these.
const DROP = new Set(['description', 'verbose_description', 'typetext', 'format_description', 'title', 'completion', 'renderer', 'requires_feature']);

// Under `properties` the keys are parameter names, not prose: a parameter may be called `description`.
function strip(node, inProperties = false) {
  if (Array.isArray(node)) return node.map((n) => strip(n));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const key of Object.keys(node).sort()) {
    if (!inProperties && DROP.has(key)) continue;
    out[key] = strip(node[key], !inProperties && key === 'properties');
  }
  return out;
}

function main() {
  const input = process.argv[2] || require('node:path').join(__dirname, '..', '..', 'shared', 'reference', 'pve-api-schema.json');
  const output = process.argv[3] || path.join(__dirname, '..', 'src', 'lab', 'pve-api', 'schema-subset.json');
  const tree = JSON.parse(fs.readFileSync(input, 'utf8'));
  const byPath = new Map();
  const walk = (n) => {
    byPath.set(n.path, n);
    (n.children || []).forEach(walk);
  };
  tree.forEach(walk);

  const subset = {};
  for (const [p, methods] of Object.entries(SERVED)) {
    const node = byPath.get(p);
    if (!node) throw new Error(`path not in schema: ${p}`);
    subset[p] = {};
    for (const m of methods) {
      const info = node.info && node.info[m];
      if (!info) throw new Error(`method not in schema: ${m} ${p}`);
      subset[p][m] = {
        parameters: strip(info.parameters || { additionalProperties: 0, properties: {} }),
        protected: info.protected ? 1 : 0,
        allowtoken: info.allowtoken === undefined ? 1 : info.allowtoken,
      };
      // The JSON types of a returned object's numeric and boolean keys: PVE prints them as numbers (booleans 1/0).
      const props = info.returns && info.returns.type === 'object' ? info.returns.properties || {} : {};
      const returnTypes = {};
      for (const k of Object.keys(props).sort()) if (['integer', 'number', 'boolean'].includes(props[k].type)) returnTypes[k] = props[k].type;
      if (Object.keys(returnTypes).length > 0) subset[p][m].returnTypes = returnTypes;
    }
  }
  fs.writeFileSync(output, JSON.stringify(subset, null, 1) + '\n');
  process.stdout.write(`wrote ${output}: ${Object.keys(subset).length} paths\n`);
}

main();
