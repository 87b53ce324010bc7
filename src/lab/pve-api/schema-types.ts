/** Shapes of the generated schema subset (scripts/gen-pve-schema.js → schema-subset.json). */

export interface ParamSchema {
  type?: string;
  optional?: number;
  format?: string | Record<string, ParamSchema>;
  pattern?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  minLength?: number;
  default_key?: number;
  alias?: string;
  keyAlias?: string;
  requires?: string;
  items?: ParamSchema;
  default?: unknown;
}

export interface ParametersSchema {
  additionalProperties?: number;
  properties?: Record<string, ParamSchema>;
}

export interface MethodSchema {
  parameters: ParametersSchema;
  protected: number;
  allowtoken: number;
  /** keys of a returned object that PVE prints as JSON numbers (`boolean` ones as 1/0), by their schema type */
  returnTypes?: Record<string, 'integer' | 'number' | 'boolean'>;
}

/** path template (e.g. `/nodes/{node}/lxc/{vmid}/config`) → HTTP method → schema. */
export type SchemaSubset = Record<string, Record<string, MethodSchema>>;
