// check.mjs FILE.json [FILE.json …]: validates FHIR R4 bundles with FHIR.js,
// an implementation that shares nothing with Haven's Go export, against the
// base R4 specification it ships (structure, cardinality, types, required
// value sets, unexpected properties). It adds the checks a document bundle
// needs that FHIR.js leaves to the reader: a Composition first, unique
// fullUrls, and every urn:uuid reference resolving inside the bundle.
//
// It prints one line per problem, "FILE: LOCATION: MESSAGE", and exits 1 if
// there is any error (warnings are printed and do not fail), 2 if a file
// cannot be read. On success it prints "FILE: ok, N resources" per file.
import { readFileSync } from 'node:fs';
import fhirPkg from 'fhir';

const { Fhir } = fhirPkg;
const fhir = new Fhir();

function references(value, path, out) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => references(v, `${path}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') out.push({ path: `${path}.reference`, ref: v });
      else references(v, `${path}.${k}`, out);
    }
  }
  return out;
}

function check(file) {
  let bundle;
  try {
    bundle = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.log(`${file}: cannot read: ${err.message}`);
    process.exit(2);
  }
  const errors = [];
  const result = fhir.validate(bundle, { errorOnUnexpected: true });
  for (const m of result.messages) {
    const line = `${file}: ${m.resourceId ? m.resourceId + ' ' : ''}${m.location}: ${m.severity}: ${m.message}`;
    if (m.severity === 'error') errors.push(line);
    else console.log(line);
  }
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'document') {
    errors.push(`${file}: Bundle: not a document bundle`);
  }
  if (entries[0]?.resource?.resourceType !== 'Composition') {
    errors.push(`${file}: Bundle.entry[0]: a document bundle begins with its Composition`);
  }
  const urls = new Set();
  entries.forEach((e, i) => {
    if (!e.fullUrl) errors.push(`${file}: Bundle.entry[${i}]: no fullUrl`);
    else if (urls.has(e.fullUrl)) errors.push(`${file}: Bundle.entry[${i}]: fullUrl ${e.fullUrl} used twice`);
    urls.add(e.fullUrl);
  });
  entries.forEach((e, i) => {
    for (const { path, ref } of references(e.resource, `Bundle.entry[${i}].resource`, [])) {
      if (ref.startsWith('urn:uuid:') && !urls.has(ref)) errors.push(`${file}: ${path}: ${ref} is not in the bundle`);
    }
  });
  for (const line of errors) console.log(line);
  if (errors.length === 0) console.log(`${file}: ok, ${entries.length} resources`);
  return errors.length;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.log('usage: node check.mjs FILE.json [FILE.json …]');
  process.exit(2);
}
let failed = 0;
for (const f of files) failed += check(f);
process.exit(failed ? 1 : 0);
