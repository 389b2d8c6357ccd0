// Calls index.d.ts must reject: scripts/suite/node.sh expects `tsc --noEmit` to fail here, which
// shows the TypeScript example is checked against real types.
import { Engine } from 'tripline'

const engine = Engine.fromConfig('tripline.toml')
engine.pushSeries('depth', 'lots')
engine.runCycle({ at: 'yesterday' })
const n: number = engine.instances
void n
