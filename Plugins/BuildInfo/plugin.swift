import Foundation
import PackagePlugin

/// Embeds the git revision the binary was built from (`buildGitRevision`, "+dirty" when tracked files were
/// changed, "unknown" outside a git checkout) into the target, at every build: reports name the code that
/// made them, whatever directory the binary later runs in.
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let dir = context.pluginWorkDirectoryURL.appending(path: "generated")
        let out = dir.appending(path: "BuildInfo.swift").path
        let root = context.package.directoryURL.path
        let script = """
            mkdir -p '\(dir.path)'; \
            rev=$(git -C '\(root)' rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
            if [ "$rev" != unknown ] && [ -n "$(git -C '\(root)' status --porcelain --untracked-files=no 2>/dev/null | head -c1)" ]; then rev="$rev+dirty"; fi; \
            tmp=$(mktemp); \
            printf '/// The git revision this binary was built from (generated at build time).\\npublic let buildGitRevision = "%s"\\n' "$rev" > "$tmp"; \
            if cmp -s "$tmp" '\(out)'; then rm -f "$tmp"; else mv "$tmp" '\(out)'; fi
            """
        return [.prebuildCommand(displayName: "Embedding the git revision", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script], outputFilesDirectory: dir)]
    }
}
