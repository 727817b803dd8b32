// The demo's Node receiver: waits for one envelope on SUBJECT, prints each payload and
// answers with an ACK envelope on the sender's reply_to.
//
//   node demo/receiver.js SUBJECT NAME      (NATS_URL / FILESERVER_URL from the environment)
'use strict';
const crypto = require('node:crypto');
const nb = require('../bindings/node');

function describe(type, data) {
  switch (type) {
    case 'text':
    case 'image':
    case 'audio':
    case 'video':
    case 'binary': {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      return 'sha256 ' + crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    }
    case 'dictionary':
      return 'keys ' + Object.keys(data).join(', ');
    case 'jsontable':
      return `${data.length} rows [${Object.keys(data[0] || {}).join(', ')}]`;
    case 'arrowtable':
      return `${data.numRows} rows [${data.schema.fields.map((f) => f.name).join(', ')}]`;
    default:
      return '';
  }
}

async function main() {
  const [subject, name] = process.argv.slice(2);
  if (!subject || !name) {
    console.error('usage: node demo/receiver.js SUBJECT NAME');
    process.exit(2);
  }
  const client = await nb.connect({ senderName: name });
  const sub = await client.subscribe(subject);
  console.log(`[${name}] ready, listening on ${subject}`);
  for await (const env of sub) {
    console.log(`[${name}] envelope ${env.msg_id} from ${env.sender_name} (${env.payloads.length} payloads)`);
    for (const p of env.payloads) {
      const [dataname, data, type] = p;
      console.log(
        `[${name}]   ${dataname.padEnd(8)} ${type.padEnd(11)} ${p.transport.padEnd(6)} ` +
          `${String(p.size).padStart(9)} bytes  ${describe(type, data)}`,
      );
    }
    await client.reply(env, [['ack', `${name} received ${env.payloads.length} payloads`, 'text']], {
      msg_purpose: 'ACK',
    });
    break; // one envelope is the whole demo
  }
  await client.close();
}

main().catch((err) => {
  console.error(`[receiver] ${err.code || 'ERROR'}: ${err.message}`);
  process.exit(1);
});
