export { AssertionError, assert } from './assert.js'
export { KeyedMutex } from './keyed-mutex.js'
