export { type CaseResult, measure, type Suite, type SuiteContext } from './harness.js';
