// Only workflow functions are exported here: this module is the worker's workflowsPath.
export { deploy } from './deploy';
export { teardown } from './teardown';
