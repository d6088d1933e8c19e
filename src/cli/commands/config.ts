/** `keyway config set|unset|list`: the remembered project and region, and where the CLI looks. */
import { Argument, type Command } from 'commander';
import { scopeOf, withDataDir, withFormat } from '../command-kit.js';
import { checkSetting, SETTING_NAMES, type SettingName } from '../context.js';
import type { CliIo } from '../io.js';

export function registerConfig(program: Command, io: CliIo): void {
  const config = program.command('config').description('the CLI\'s remembered settings');
  const name = (): Argument => new Argument('<name>', 'setting').choices(SETTING_NAMES);

  withDataDir(config.command('set').addArgument(name()).argument('<value>', 'value'))
    .description('remember a project or region for later commands')
    .action(async (key: SettingName, value: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await ctx.writeSettings({ ...(await ctx.readSettings()), [key]: checkSetting(key, value) });
      out.status(`Updated property [${key}].`);
    });

  withDataDir(config.command('unset').addArgument(name()))
    .description('forget a remembered setting')
    .action(async (key: SettingName, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const settings = await ctx.readSettings();
      delete settings[key];
      await ctx.writeSettings(settings);
      out.status(`Unset property [${key}].`);
    });

  withFormat(withDataDir(config.command('list')))
    .description('show the settings in effect and where they come from')
    .option('--api-url <url>', 'admin API URL')
    .option('--ca-file <file>', 'CA certificate to trust')
    .option('--admin-token-file <file>', 'file holding the admin token')
    .option('--api-key-file <file>', "file holding a service account's API key")
    .action(async (_: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const settings = await ctx.readSettings();
      out.resource({
        project: io.env.KEYWAY_PROJECT || settings.project,
        region: io.env.KEYWAY_REGION || settings.region,
        apiUrl: ctx.apiUrl,
        dataDir: ctx.dataDir,
        caFile: ctx.describeCaSource(),
        adminToken: ctx.describeTokenSource(),
      });
    });
}
