'use strict';
// Times one PBFT run of csienslab/BFT-Simulator for `ledgersim bench --peer-bftsim DIR`.
//
// Usage: node bftsim.js DIR NODES DECISIONS
// Prints one JSON line: the messages it simulated and the wall and CPU seconds its
// own main loop took (Simulator.startSimulation, what its main.js runs, without the
// progress bar). Nothing of BFT-Simulator is changed on disk: its config module is
// the object every one of its files requires, so it is set here before the run.
const path = require('path');

const [dir, nodes, decisions] = process.argv.slice(2);
const config = require(path.resolve(dir, 'config.js'));
Object.assign(config, {
  protocol: 'pbft',
  nodeNum: Number(nodes),
  byzantineNodeNum: 0,
  attacker: 'fail-stop',
  lambda: 3,
  networkDelay: { mean: 0.25, std: 0.05 },
  logToFile: false,
  repeatTime: Number(decisions),
});
const Simulator = require(path.resolve(dir, 'simulator.js'));
const simulator = new Simulator(config);
const wall0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
simulator.startSimulation();
const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const results = simulator.simulationResults;
const messages = results.reduce((sum, r) => sum + r.totalMsgCount, 0);
console.log(JSON.stringify({
  nodes: config.nodeNum,
  decisions: results.length,
  messages,
  wall_s: wall,
  cpu_s: (cpu.user + cpu.system) / 1e6,
}));
