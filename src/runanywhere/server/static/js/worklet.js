// AudioWorklet processor: hands the microphone's samples to the page in blocks of 2048, with their RMS level.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(2048);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    let at = 0;
    while (at < channel.length) {
      const take = Math.min(channel.length - at, this.block.length - this.filled);
      this.block.set(channel.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.block.length) {
        let sum = 0;
        for (const v of this.block) sum += v * v;
        this.port.postMessage({ samples: this.block, level: Math.sqrt(sum / this.block.length) }, [this.block.buffer]);
        this.block = new Float32Array(2048);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor('capture', Capture);
