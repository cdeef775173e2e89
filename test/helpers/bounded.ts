/**
 * Waits for `promise`, failing with `what` if it has not settled within `ms`: a bound that proves "no
 * hang", never a pause to let things settle.
 */
export async function settleWithin<T> (promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, limit])
  } finally {
    clearTimeout(timer)
  }
}
