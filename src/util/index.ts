export { AssertionError, assert } from './assert.js'
