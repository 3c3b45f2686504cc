// Types of the validator scripts/build-validator.mjs generates from runtime-config.schema.json.
import type { ValidateFunction } from "ajv"

/** sha256 of JSON.stringify(the schema) it was generated from. */
export declare const schemaHash: string
declare const validate: ValidateFunction
export default validate
