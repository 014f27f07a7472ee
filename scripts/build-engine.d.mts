/** Types for build-engine.mjs, which runs as plain Node on `npm install`. */
export declare const enginePath: string;
export declare function engineIsCurrent(): boolean;
export declare function buildEngine(options?: { quiet?: boolean }): boolean;
